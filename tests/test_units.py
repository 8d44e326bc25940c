"""sandfill.units: one vocabulary for time and memory, as Slurm writes them."""

from __future__ import annotations

import pytest

from sandfill import units
from sandfill.units import Duration, UnitError

DURATIONS = [
    # Slurm's own forms (sbatch --time)
    ("2", 120),
    ("2:00", 120),  # MM:SS: two minutes, as in Slurm
    ("02:00:00", 7200),
    ("1-0", 86400),
    ("1-02", 93600),
    ("1-02:30", 95400),
    ("1-02:30:15", 95415),
    ("90:00", 5400),
    # friendly forms
    ("90m", 5400),
    ("90min", 5400),
    ("2h", 7200),
    ("1.5h", 5400),
    ("2 hours", 7200),
    ("1d", 86400),
    ("45s", 45),
    (" 30 ", 1800),
    # a bare number means minutes, as in Slurm
    (30, 1800),
    (0, 0),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text: object, seconds: int) -> None:
    assert units.parse_duration(text) == seconds


BAD_DURATIONS = ["", "-", "1-", "1:2:3:4", "2:60", "1-24", "abc", "2x", "2:00\n", "٣", "1.5", "-5", "10000d"]


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_bad_durations_name_the_key_and_the_value(text: str) -> None:
    with pytest.raises(UnitError) as exc:
        units.parse_duration(text, key="walltime")
    msg = str(exc.value)
    assert msg.startswith("walltime: ") and repr(text) in msg


@pytest.mark.parametrize("value", [True, 1.5, None, [1], {"a": 1}])
def test_durations_refuse_other_types(value: object) -> None:
    with pytest.raises(UnitError, match="is not a duration"):
        units.parse_duration(value)


def test_positive_refuses_zero_and_the_wording_is_shared() -> None:
    with pytest.raises(UnitError, match="must be longer than zero"):
        units.parse_duration("0", positive=True)
    with pytest.raises(UnitError) as a:
        units.parse_duration("soon", key="x")
    with pytest.raises(UnitError) as b:
        Duration.parse("soon", key="x")
    assert str(a.value) == str(b.value)


def test_slurm_output_times() -> None:
    assert units.parse_slurm_time("UNLIMITED") is None
    assert units.parse_slurm_time("N/A") is None
    assert units.parse_slurm_time("1-00:00:00") == 86400
    assert units.parse_slurm_time("30:00") == 1800
    assert units.parse_slurm_time("garbage") is None


@pytest.mark.parametrize(("seconds", "text"), [(0, "00:00:00"), (61, "00:01:01"), (7200, "02:00:00"), (90061, "1-01:01:01")])
def test_format_round_trips(seconds: int, text: str) -> None:
    assert units.format_duration(seconds) == text
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize(("seconds", "words"), [(120, "2 minutes"), (3600, "1 hour"), (5400, "1 hour 30 minutes"), (90061, "1 day 1 hour"), (0, "0 seconds")])
def test_describe_duration(seconds: int, words: str) -> None:
    assert units.describe_duration(seconds) == words


MEMORY = [("4G", 4096), ("4GB", 4096), ("4GiB", 4096), ("4g", 4096), ("512M", 512), ("512", 512), (512, 512), ("1T", 1024**2), ("1.5G", 1536), ("1024K", 1), ("1K", 1)]


@pytest.mark.parametrize(("text", "mib"), MEMORY)
def test_memory(text: object, mib: int) -> None:
    assert units.parse_memory(text) == mib


@pytest.mark.parametrize("text", ["", "lots", "4X", "-1G", "0", "4 G B", "4G\n", True, 1.5])
def test_bad_memory_names_the_key(text: object) -> None:
    with pytest.raises(UnitError) as exc:
        units.parse_memory(text, key="memory")
    assert str(exc.value).startswith("memory: ")


def test_memory_formats() -> None:
    assert units.format_memory(4096) == "4G"
    assert units.format_memory(1500) == "1500M"
    assert units.describe_memory(4096) == "4 GiB"
    assert units.describe_memory(1536) == "1.5 GiB"
    assert units.describe_memory(512) == "512 MiB"


def test_timestamps() -> None:
    t = units.parse_timestamp("2026-11-21T09:04:22")
    assert t is not None and units.parse_timestamp("N/A") is None and units.parse_timestamp("Unknown") is None
    assert units.parse_timestamp("2026-11-21T09:04:23") == t + 1


# ---- the same strings through every entry point ---------------------------------------------
# Each entry point below reads a person's duration or memory; every one must give the same
# seconds or MiB as sandfill.units for the same text.

SAME_DURATIONS = [("2:00", 120), ("45", 2700), (45, 2700), ("90m", 5400), ("01:30:00", 5400), ("2h", 7200), ("1-00", 86400), ("1d", 86400)]
SAME_MEMORY = [("4G", 4096), ("4GiB", 4096), ("4096", 4096), (4096, 4096), ("512M", 512), ("1.5G", 1536)]


def _site(**keys: object) -> dict[str, object]:
    tiny = {"name": "tiny", "cpus": 1, "memory": "256M", "walltime": "1:00", "partition": "interactive"}
    return {"max_walltime": "2d", "partitions": ["interactive"], "default_partition": "interactive", "profiles": [tiny], **keys}


def _via_site_file(text: object) -> int:
    from sandfill.hub.site import site_from_dict

    return site_from_dict(_site(max_walltime=text)).max_walltime


def _via_profile(text: object) -> int:
    from sandfill.hub.site import site_from_dict

    profile = {"name": "p", "cpus": 1, "memory": "1G", "walltime": text, "partition": "interactive"}
    return site_from_dict(_site(profiles=[profile])).profiles[0].walltime


def _choices() -> object:
    from sandfill.hub.form import Choices
    from sandfill.hub.site import Profile
    from sandfill.slurm.sinfo import PartitionInfo

    part = PartitionInfo("interactive", True, 2 * 86400, 8, 4, 0, 32, 32, 1024**2)
    profile = Profile(name="p", cpus=1, memory="1G", walltime="1h", partition="interactive")
    return Choices(
        profiles=(profile,), partitions={"interactive": part}, default_partition="interactive",
        max_cpus=8, max_memory_mb=1024**2, max_walltime_s=2 * 86400, accounts=(),
    )


def _via_form_walltime(text: object) -> int:
    from sandfill.hub.form import validate_request

    return validate_request({"profile": "p", "walltime": str(text), "partition": "interactive"}, _choices()).walltime_s  # type: ignore[arg-type]


def _via_form_memory(text: object) -> int:
    from sandfill.hub.form import validate_request

    return validate_request({"profile": "p", "memory": str(text), "partition": "interactive"}, _choices()).memory_mb  # type: ignore[arg-type]


def _via_policy_file(text: object) -> int:
    from sandfill.policies import load_policy, policy_from_mapping, policy_to_mapping

    mapping = policy_to_mapping(load_policy(None))
    mapping["tiers"]["burst"].update(max_walltime=text, default_walltime=text)
    tier = next(t for t in policy_from_mapping(mapping).tiers if t.name == "burst")
    assert tier.default_walltime is not None and tier.default_walltime.seconds == tier.max_walltime.seconds
    return tier.max_walltime.seconds


def _via_dask_setting(text: object) -> int:
    import dask

    from sandfill.dask import config

    with dask.config.set({"jobqueue.sandfill.max-walltime": text}):
        return int(config.seconds("max-walltime"))


def _via_dask_memory(text: object) -> int:
    import dask

    from sandfill.dask import config

    with dask.config.set({"jobqueue.sandfill.memory": text}):
        return config.memory_mib("memory")


def _lab_params(**keys: object) -> dict[str, object]:
    import asyncio

    from sandfill.lab.manager import ClusterManager

    class NoSlurm:
        async def partitions(self) -> dict[str, object]:
            return {}

    manager = ClusterManager(connection_dir="/nonexistent", slurm=NoSlurm())  # type: ignore[arg-type]
    body = {"cores": 1, "memory": "1G", "min_walltime": "1:30", "max_walltime": "2h", "partition": None, "qos": None, **keys}
    return asyncio.run(manager._validate_params(body))


def _via_lab_body(text: object) -> int:
    out = units.parse_slurm_time(str(_lab_params(max_walltime=text)["max_walltime"]))
    assert out is not None
    return out


def _via_lab_memory(text: object) -> int:
    return units.parse_memory(str(_lab_params(memory=text)["memory"]))


def _via_hub_check_cli(key: str, text: object) -> int:
    import contextlib
    import io
    import json
    import tempfile

    import yaml

    from sandfill.cli import main

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(_site(**{key: text}), f)
        f.flush()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["hub", "check", f.name, "--json"]) == 0
    return int(json.loads(out.getvalue())[key])


DURATION_ENTRY_POINTS = {
    "units": units.parse_duration,
    "site file": _via_site_file,
    "profile": _via_profile,
    "form field": _via_form_walltime,
    "policy file": _via_policy_file,
    "dask setting": _via_dask_setting,
    "lab REST body": _via_lab_body,
    "hub check --json": lambda t: _via_hub_check_cli("max_walltime", t),
}
MEMORY_ENTRY_POINTS = {
    "units": units.parse_memory,
    "site file": lambda t: __import__("sandfill.hub.site", fromlist=["x"]).site_from_dict(_site(max_memory=t)).max_memory,
    "form field": _via_form_memory,
    "dask setting": _via_dask_memory,
    "lab REST body": _via_lab_memory,
    "hub check --json": lambda t: _via_hub_check_cli("max_memory", t),
}


@pytest.mark.parametrize("entry", sorted(DURATION_ENTRY_POINTS))
@pytest.mark.parametrize(("text", "seconds"), SAME_DURATIONS)
def test_a_duration_means_the_same_in_every_entry_point(entry: str, text: object, seconds: int) -> None:
    assert DURATION_ENTRY_POINTS[entry](text) == seconds


@pytest.mark.parametrize("entry", sorted(MEMORY_ENTRY_POINTS))
@pytest.mark.parametrize(("text", "mib"), SAME_MEMORY)
def test_memory_means_the_same_in_every_entry_point(entry: str, text: object, mib: int) -> None:
    assert MEMORY_ENTRY_POINTS[entry](text) == mib


@pytest.mark.parametrize("entry", sorted(DURATION_ENTRY_POINTS))
def test_a_bad_duration_is_refused_in_the_same_words_everywhere(entry: str) -> None:
    with pytest.raises(Exception) as exc:
        DURATION_ENTRY_POINTS[entry]("1:2:3:4")
    if entry == "hub check --json":
        return  # exits 2: the CLI's own test checks its output
    assert "'1:2:3:4' is not a duration (use MM, MM:SS, HH:MM:SS" in str(exc.value)
