"""The spawn form's validation and the batch script it leads to (no Slurm needed)."""

from __future__ import annotations

import pytest

from sandfill.hub.form import (
    Choices,
    FormError,
    FormErrors,
    ResourceRequest,
    flatten_form,
    render_form,
    validate_request,
    without_impossible_profiles,
)
from sandfill.hub.script import DEFAULT_TEMPLATE, ScriptError, build_context, render_script
from sandfill.hub.site import Profile
from sandfill.slurm.sinfo import PartitionInfo


def _part(name: str, max_time: int = 8 * 3600, cpus: int = 8, up: bool = True) -> PartitionInfo:
    return PartitionInfo(name, up, max_time, cpus, 4, 0, 32, 32, 16000)


CHOICES = Choices(
    profiles=(
        Profile(name="small", description="1 CPU, 2 h, interactive tier", cpus=1, memory="2G", walltime="02:00:00", partition="interactive"),
        Profile(name="big", description="8 CPUs, 4 h", cpus=8, memory=8192, walltime="4h", partition="burst"),
    ),
    partitions={"interactive": _part("interactive"), "burst": _part("burst", max_time=3600), "batch": _part("batch", up=False)},
    default_partition="interactive",
    max_cpus=8,
    max_memory_mb=8192,
    max_walltime_s=8 * 3600,
    accounts=("sandfill", "physics"),
)

# every field × every kind of bad value: each must be rejected, naming the field
INJECTIONS = {
    "newline": "1\n#SBATCH --uid=0",
    "carriage return": "interactive\r",
    "sbatch directive": "#SBATCH --qos=admin",
    "command substitution": "$(touch /tmp/pwned)",
    "backticks": "`id`",
    "semicolon": "2; rm -rf ~",
    "pipe": "1|sh",
    "redirect": "1>/etc/passwd",
    "space option": "1 --exclusive",
    "quote": "1'",
    "nul": "1\x00",
    "very long": "1" * 500,
}
FIELDS = ["profile", "cpus", "memory", "walltime", "partition", "account"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("kind", sorted(INJECTIONS))
def test_injection_in_any_field_is_rejected_naming_the_field(field: str, kind: str) -> None:
    with pytest.raises(FormError) as exc:
        validate_request({field: INJECTIONS[kind]}, CHOICES)
    assert exc.value.field == field
    assert exc.value.status_code == 400
    assert str(exc.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"partition": "gpu"}, "partition", "is not one of: interactive, burst, batch"),
        ({"partition": "batch"}, "partition", "not accepting jobs"),
        ({"cpus": "-1"}, "cpus", "from 1 to 8"),
        ({"cpus": "0"}, "cpus", "from 1 to 8"),
        ({"cpus": "9"}, "cpus", "from 1 to 8"),
        ({"cpus": "99999999999999999999"}, "cpus", "from 1 to 8"),
        ({"cpus": 2.5}, "cpus", "single text value"),
        ({"cpus": True}, "cpus", "single text value"),
        ({"cpus": ["1", "2"]}, "cpus", "single text value"),
        ({"memory": "-4G"}, "memory", "is not an amount of memory"),
        ({"memory": "9G"}, "memory", "more than the limit of 8G"),
        ({"memory": "lots"}, "memory", "is not an amount of memory"),
        ({"walltime": "-01:00:00"}, "walltime", "is not a duration"),
        ({"walltime": "00:00:00"}, "walltime", "longer than zero"),
        ({"walltime": "99:00:00"}, "walltime", "longer than the limit of 08:00:00"),
        ({"walltime": "02:00:00", "partition": "burst"}, "walltime", "limit of 01:00:00 on burst"),
        ({"walltime": "01:75:00"}, "walltime", "up to 59"),
        ({"account": "root"}, "account", "not one of your accounts"),
        ({"profile": "huge"}, "profile", "is not one of: small, big, custom"),
        ({"qos": "high"}, "qos", "not a known field"),
        ({"req_options": "--uid=0"}, "req_options", "not a known field"),
    ],
)
def test_out_of_bounds_values_are_rejected(options: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(FormError) as exc:
        validate_request(options, CHOICES)
    assert exc.value.field == field
    assert words in str(exc.value)


def test_profile_fills_fields_and_fields_override_within_limits() -> None:
    assert validate_request({}, CHOICES) == ResourceRequest("small", 1, 2048, 7200, "interactive", None)
    r = validate_request({"profile": "big", "walltime": "00:30:00"}, CHOICES)
    assert r == ResourceRequest("big", 8, 8192, 1800, "burst", None)
    r = validate_request({"profile": "custom", "cpus": "4", "memory": "3G", "walltime": "1:30:00", "partition": "interactive", "account": "physics"}, CHOICES)
    assert r == ResourceRequest("custom", 4, 3072, 5400, "interactive", "physics")


@pytest.mark.parametrize(
    ("walltime", "seconds"),
    [("2:00", 120), ("02:00:00", 7200), ("2h", 7200), ("90", 5400), ("90m", 5400), ("1:30", 90), ("45s", 45), ("0-06", 6 * 3600)],
)
def test_walltime_field_reads_slurm_syntax(walltime: str, seconds: int) -> None:
    """"2:00" is two minutes, as in Slurm and everywhere in sandfill; a bare number is minutes."""
    r = validate_request({"profile": "custom", "cpus": "1", "memory": "1G", "walltime": walltime}, CHOICES)
    assert r.walltime_s == seconds


@pytest.mark.parametrize(("memory", "mib"), [("4G", 4096), ("4GB", 4096), ("4GiB", 4096), ("1500M", 1500), ("512", 512), ("1.5G", 1536)])
def test_memory_field_reads_slurm_syntax(memory: str, mib: int) -> None:
    r = validate_request({"profile": "custom", "cpus": "1", "memory": memory, "walltime": "1h"}, CHOICES)
    assert r.memory_mb == mib


@pytest.mark.parametrize(("field", "value"), [("walltime", "forever"), ("walltime", "1:2:3:4"), ("memory", "4X")])
def test_unit_errors_use_the_words_of_sandfill_units(field: str, value: str) -> None:
    from sandfill import units

    parse = units.parse_duration if field == "walltime" else units.parse_memory
    with pytest.raises(units.UnitError) as expected:
        parse(value)
    with pytest.raises(FormError) as exc:
        validate_request({"profile": "custom", "cpus": "1", "memory": "1G", "walltime": "1h", field: value}, CHOICES)
    assert str(exc.value) == f"{field}: {expected.value.problem}"


def test_validated_options_round_trip() -> None:
    r = validate_request({"profile": "custom", "cpus": "3", "memory": "1500M", "walltime": "45min", "partition": "burst"}, CHOICES)
    assert validate_request(r.as_options(), CHOICES) == r


def test_flatten_form_rejects_repeated_fields() -> None:
    assert flatten_form({"cpus": ["2"], "_xsrf": ["x"]}) == {"cpus": "2"}
    with pytest.raises(FormError, match="exactly one value"):
        flatten_form({"cpus": ["2", "3"]})


def test_form_html_is_escaped_and_lists_profiles_and_availability() -> None:
    evil = Choices(
        profiles=(Profile(name="small", description="<script>alert(1)</script>", cpus=1, memory="1G", walltime="1:00:00"),),
        partitions={"interactive": _part("interactive")},
        default_partition="interactive",
        max_cpus=8,
        max_memory_mb=8192,
        max_walltime_s=3600,
    )
    html = render_form(evil)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    html = render_form(CHOICES)
    assert 'value="small"' in html and 'value="big"' in html and "32 of 32" in html
    assert '<option value="physics"' in html


def test_every_bad_field_is_named_at_once_not_only_the_first() -> None:
    with pytest.raises(FormErrors) as exc:
        validate_request({"profile": "custom", "cpus": "99", "memory": "lots", "walltime": "12:00:00"}, CHOICES)
    assert set(exc.value.errors) == {"cpus", "memory", "walltime"}
    message = str(exc.value)
    assert message.startswith("3 fields need a change: ")
    assert "cpus: '99' must be a whole number from 1 to 8" in message
    assert "memory: 'lots' is not an amount of memory (use 512M, 4G or 1T" in message  # the accepted forms
    assert "walltime: '12:00:00' is longer than the limit of 08:00:00 on interactive" in message
    with pytest.raises(FormErrors) as bad_profile:  # a bad profile fills nothing in: said once
        validate_request({"profile": "`id`"}, CHOICES)
    assert list(bad_profile.value.errors) == ["profile"] and str(bad_profile.value).startswith("profile: ")
    with pytest.raises(FormErrors) as one:  # one bad field reads as before
        validate_request({"memory": "lots"}, CHOICES)
    assert str(one.value).startswith("memory: 'lots'") and list(one.value.errors) == ["memory"]


def test_a_profile_that_cannot_start_is_not_offered_and_says_why() -> None:
    offered = without_impossible_profiles(CHOICES)
    assert [p.name for p in offered.profiles] == ["small"]
    assert offered.hidden == (("big", "walltime: '04:00:00' is longer than the limit of 01:00:00 on burst"),)
    html = render_form(offered)
    assert 'value="small"' in html and 'value="big"' not in html


def test_a_refused_form_keeps_what_was_typed_and_shows_each_error_by_its_field() -> None:
    typed = {"profile": "custom", "cpus": "2", "memory": "lots", "walltime": "12:00:00", "partition": "interactive"}
    with pytest.raises(FormErrors) as exc:
        validate_request(typed, CHOICES)
    html = render_form(CHOICES, refused=(typed, exc.value))
    assert 'id="profile-custom" checked' in html
    assert 'name="memory" id="sandfill-memory" maxlength="64" value="lots"' in html
    assert 'value="12:00:00"' in html and 'value="2"' in html
    assert "Memory 'lots' is not an amount of memory (use 512M, 4G or 1T" in html
    assert "Walltime '12:00:00' is longer than the limit of 08:00:00 on interactive" in html
    assert 'id="sandfill-cpus-error"' not in html  # cpus was fine
    assert html.count("is-invalid") == 2
    evil = {**typed, "memory": "<b>x</b>"}
    with pytest.raises(FormErrors) as exc2:
        validate_request(evil, CHOICES)
    assert "<b>x</b>" not in render_form(CHOICES, refused=(evil, exc2.value))


def _context(request: ResourceRequest, **kw: object) -> str:
    args: dict[str, object] = dict(
        username="alice",
        home="/home/alice",
        output="/home/alice/sandfill-jupyter-%j.log",
        env={"JUPYTERHUB_API_TOKEN": "secret", "SLURM_CONF": "/etc/slurm/slurm.conf"},
        path="/opt/venv/bin:/usr/bin:/bin",
        command=["/opt/venv/bin/batchspawner-singleuser", "/opt/venv/bin/jupyterhub-singleuser", "--debug"],
    )
    args.update(kw)
    return render_script(DEFAULT_TEMPLATE, build_context(request, **args))  # type: ignore[arg-type]


def test_script_has_exactly_the_validated_values() -> None:
    r = validate_request({"profile": "custom", "cpus": "4", "memory": "3G", "walltime": "1:30:00", "account": "physics"}, CHOICES)
    script = _context(r)
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=jupyterhub-alice",
        "#SBATCH --partition=interactive",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=3072M",
        "#SBATCH --time=01:30:00",
        "#SBATCH --no-requeue",
        "#SBATCH --account=physics",
        "#SBATCH --output=/home/alice/sandfill-jupyter-%j.log",
        "#SBATCH --chdir=/home/alice",
        "#SBATCH --export=JUPYTERHUB_API_TOKEN,SLURM_CONF",
    ]
    assert "secret" not in script  # the token travels in sbatch's environment, not the script
    assert script.rstrip().endswith("exec /opt/venv/bin/batchspawner-singleuser /opt/venv/bin/jupyterhub-singleuser --debug")


def test_script_context_refuses_unsafe_values_even_if_validation_were_bypassed() -> None:
    bad = ResourceRequest("custom", 1, 1024, 3600, "interactive\n#SBATCH --uid=0")
    with pytest.raises(ScriptError):
        _context(bad)
    with pytest.raises(ScriptError):
        _context(ResourceRequest("custom", 1, 1024, 3600, "interactive"), home="/home/a b")
    with pytest.raises(ScriptError):
        _context(ResourceRequest("custom", 1, 1024, 3600, "interactive"), extra_directives=["#SBATCH --qos=x\n#SBATCH --uid=0"])


def test_user_options_cannot_reach_the_template() -> None:
    # stock batchspawner merges user_options into the template variables last; here the
    # template is rendered from the ScriptContext fields only
    r = validate_request({}, CHOICES)
    script = _context(r)
    assert "{{" not in script and "options" not in script


# ---- the hint under memory and walltime: how the form will read the value ---------------

HINT_DURATIONS = ["2:00", "02:00:00", "2h", "90", "90m", "1:30", "45s", "1-00", "1-02:03:04", "0-06", "1.5h", "2 hours", "10min", "forever", "1:75", "1:2:3:4", "25:00:00"]
HINT_MEMORY = ["4G", "4GB", "4GiB", "1500M", "512", "1.5G", "1T", "100k", "lots", "4X"]


def test_form_has_the_hints_and_the_units_script() -> None:
    html = render_form(CHOICES)
    assert 'id="sandfill-walltime-hint"' in html and 'id="sandfill-memory-hint"' in html
    assert 'aria-describedby="sandfill-walltime-hint"' in html
    assert '<script id="sandfill-units">' in html and "window.sandfillUnits" in html
    assert "a bare number is minutes" in html  # the forms, in the words of sandfill.units


def _units_script() -> str:
    html = render_form(CHOICES)
    start = html.index('<script id="sandfill-units">') + len('<script id="sandfill-units">')
    return html[start : html.index("</script>", start)]


def test_hint_script_reads_as_sandfill_units_does() -> None:
    """The browser's hint (run in node) gives the same seconds, MiB and words as the server."""
    import json
    import shutil
    import subprocess

    from sandfill import units

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    probe = _units_script() + (
        "\nconst U = window.sandfillUnits;"
        f"\nconst d = {json.dumps(HINT_DURATIONS)}.map(t => {{ const s = U.seconds(t); return [s, s === null ? null : U.describeDuration(s)]; }});"
        f"\nconst m = {json.dumps(HINT_MEMORY)}.map(t => {{ const n = U.mib(t); return [n, n === null ? null : U.describeMemory(n)]; }});"
        "\nconsole.log(JSON.stringify({d, m}));"
    )
    out = subprocess.run([node, "-e", "globalThis.window = globalThis;\n" + probe], capture_output=True, text=True, check=True, timeout=30)
    got = json.loads(out.stdout)

    def server(parse, describe, text):  # type: ignore[no-untyped-def]
        try:
            n = parse(text)
        except units.UnitError:
            return [None, None]
        return [n, describe(n)]

    assert got["d"] == [server(units.parse_duration, units.describe_duration, t) for t in HINT_DURATIONS]
    assert got["m"] == [server(units.parse_memory, units.describe_memory, t) for t in HINT_MEMORY]


# ---- GRES: offered per partition by the site, typed as --gres=name:N -------------------

GPU_CHOICES = Choices(
    profiles=(),
    partitions={"interactive": _part("interactive"), "gpu": _part("gpu")},
    default_partition="interactive",
    max_cpus=8,
    max_memory_mb=8192,
    max_walltime_s=8 * 3600,
    gres={"gpu": {"gpu": 2}},
)
GPU_ASK = {"profile": "custom", "cpus": "1", "memory": "1G", "walltime": "1h", "partition": "gpu"}


def test_a_gpu_request_becomes_one_typed_gres_line() -> None:
    from sandfill.schema import Gres

    r = validate_request({**GPU_ASK, "gres": "gpu:2"}, GPU_CHOICES)
    assert r.gres == Gres("gpu", 2) and r.as_options()["gres"] == "gpu:2" and "gpu:2 on gpu" in r.describe()
    directives = [ln for ln in _context(r).splitlines() if ln.startswith("#SBATCH")]
    assert directives.count("#SBATCH --gres=gpu:2") == 1 and not any("gpu:2" in d for d in directives if "--gres=" not in d)
    assert validate_request(r.as_options(), GPU_CHOICES) == r  # the saved options read back the same
    for none in ({**GPU_ASK}, {**GPU_ASK, "gres": ""}, {**GPU_ASK, "gres": "gpu:0"}):
        r0 = validate_request(none, GPU_CHOICES)
        assert r0.gres is None and "--gres" not in _context(r0) and "gres" not in r0.as_options()


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({**GPU_ASK, "gres": "gpu:3"}, "'gpu:3' is more than the 2 gpu one server may have on gpu"),
        ({**GPU_ASK, "partition": "interactive", "gres": "gpu:1"}, "'gpu:1' is not offered on interactive (there: no GRES)"),
        ({**GPU_ASK, "gres": "mps:1"}, "'mps:1' is not offered on gpu (there: gpu 0-2)"),
        ({**GPU_ASK, "gres": "gpu"}, "'gpu' is not a GRES request such as gpu:1"),
        ({**GPU_ASK, "gres": "gpu:-1"}, "'gpu:-1' is not a GRES request"),
        ({**GPU_ASK, "gres": "gpu:a100:1"}, "'gpu:a100:1' is not a GRES request"),
        ({**GPU_ASK, "gres": "GPU:1"}, "'GPU:1' is not a GRES request"),
        ({**GPU_ASK, "gres": "gpu:1,gpu:1"}, "contains characters that are not allowed: ,"),
        ({**GPU_ASK, "gres": "gpu:1\n#SBATCH --uid=0"}, "contains a line break"),
        ({**GPU_ASK, "gres": 2}, "'2' is not a GRES request"),
        ({**GPU_ASK, "gres": ["gpu:1"]}, "must be a single text value"),
    ],
)
def test_a_bad_or_out_of_range_gres_is_refused_naming_the_field(options: dict, reason: str) -> None:
    with pytest.raises(FormErrors) as exc:
        validate_request(options, GPU_CHOICES)
    assert list(exc.value.errors) == ["gres"] and reason in str(exc.value.errors["gres"])
    assert str(exc.value).startswith("gres: ")


def test_the_form_offers_a_partitions_gres_for_that_partition_only() -> None:
    html = render_form(GPU_CHOICES)
    assert 'name="gres"' in html
    assert '<option value="gpu:1" data-partition="gpu" >1 gpu</option>' in html
    assert '<option value="gpu:2" data-partition="gpu" >2 gpu</option>' in html
    assert 'data-partition="interactive" >' not in html.split('id="sandfill-gres"')[1].split("</select>")[0]
    assert 'name="gres"' not in render_form(CHOICES)  # a site without GRES: no field
    # after a refusal the choice and the reason stay next to the field
    typed = {**GPU_ASK, "gres": "gpu:3"}
    with pytest.raises(FormErrors) as exc:
        validate_request(typed, GPU_CHOICES)
    refused = render_form(GPU_CHOICES, refused=(typed, exc.value))
    assert 'id="sandfill-gres-error"' in refused and "is more than the 2 gpu" in refused
    kept = render_form(GPU_CHOICES, previous=validate_request({**GPU_ASK, "gres": "gpu:2"}, GPU_CHOICES))
    assert '<option value="gpu:2" data-partition="gpu" selected>' in kept


def test_the_script_refuses_a_gres_that_bypassed_validation() -> None:
    from sandfill.schema import Gres

    with pytest.raises(ScriptError):
        _context(ResourceRequest("custom", 1, 1024, 3600, "gpu", None, Gres("gpu\n#SBATCH --uid=0", 1)))
