"""The site file (pydantic model on sandfill.schema) and the environment overrides (no Slurm needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config

from sandfill.hub.config import CULLER_SCOPES, apply_site
from sandfill.hub.site import DEFAULT_PROFILES, SiteError, load_site, site_from_dict

EXAMPLE = Path(__file__).resolve().parents[2] / "hub_config" / "site.example.yaml"


def test_example_site_file_loads() -> None:
    site = load_site(EXAMPLE, environ={})
    assert site.hub_connect_ip == "10.0.0.5"
    assert (site.service_ip, site.service_port, site.service_connect_ip) == ("0.0.0.0", 8090, "10.0.0.5")
    assert site.partitions == ("interactive", "burst", "gpu")
    assert [p.name for p in site.profiles] == ["small", "large"]
    assert site.max_walltime == 8 * 3600 and site.max_memory == 32768
    assert [(p.memory, p.walltime) for p in site.profiles] == [(2048, 7200), (16384, 4 * 3600)]
    assert (site.start_timeout, site.poll_interval, site.walltime_warning, site.cull_idle, site.cull_every) == (900, 30, 600, 3600, 300)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2:00", 120), ("02:00:00", 7200), ("2h", 7200), ("120", 7200), ("1-00", 86400), ("90m", 5400)],
)
def test_durations_read_as_slurm_reads_them(text: str, seconds: int) -> None:
    """"2:00" is two minutes in the site file and its profiles, as in Slurm; a bare number is minutes."""
    site = site_from_dict(
        {"max_walltime": "2-00:00:00", "walltime_warning": text, "profiles": [{"name": "p", "cpus": 1, "memory": "1G", "walltime": text}]}
    )
    assert site.walltime_warning == seconds and site.profiles[0].walltime == seconds


@pytest.mark.parametrize(("text", "mib"), [("4G", 4096), ("4GB", 4096), ("4GiB", 4096), ("512", 512), ("1T", 1024 * 1024)])
def test_memory_read_as_slurm_reads_it(text: str, mib: int) -> None:
    site = site_from_dict({"max_memory": text, "profiles": [{"name": "p", "cpus": 1, "memory": text, "walltime": "1h"}]})
    assert site.max_memory == mib and site.profiles[0].memory == mib


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    f = tmp_path / "site.yaml"
    f.write_text("port: 9000\npartitions: [interactive, burst]\n")
    env = {
        "SANDFILL_HUB_PORT": "9100",
        "SANDFILL_HUB_CONNECT_IP": "10.1.2.3",
        "SLURM_CONF": "/x/slurm.conf",
        "SANDFILL_HUB_ALLOWED_USERS": "ann, bo",
        "SANDFILL_HUB_WALLTIME_WARNING": "5:00",
    }
    site = load_site(f, environ=env)
    assert site.port == 9100 and site.hub_connect_ip == "10.1.2.3" and site.slurm_conf == "/x/slurm.conf"
    assert site.allowed_users == ("ann", "bo") and site.walltime_warning == 300
    assert site.profiles == DEFAULT_PROFILES  # defaults filled in


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("prot: 8000\n", "prot: unknown key; did you mean 'port'?"),
        ("port: eighty\n", "port: 'eighty' is not a whole number"),
        ("port: 70000\n", "port: 70000 is not a TCP port"),
        ("default_partition: gpu\n", "default_partition: 'gpu' is not in partitions"),
        ("max_walltime: forever\n", "max_walltime: 'forever' is not a duration (use MM, MM:SS, HH:MM:SS"),
        ("max_memory: lots\n", "max_memory: 'lots' is not an amount of memory"),
        ("profiles: [{name: x, cpus: 99, memory: 1G, walltime: '01:00:00'}]\n", "profiles.0.cpus: 99 is above max_cpus (8)"),
        ("profiles: [{name: x, cpus: 1, memory: 1G, walltime: '9h'}]\n", "profiles.0.walltime: 32400 s is above max_walltime (28800 s)"),
        ("profiles: [{name: x, cpus: 1, memory: 1G, walltime: '01:00:00', qos: high}]\n", "profiles.0.qos: unknown key"),
        ("profiles: [{name: x, cpu: 1, memory: 1G, walltime: '01:00:00'}]\n", "profiles.0.cpu: unknown key; did you mean 'cpus'?"),
        ("profiles: [{name: x, cpus: 1, memory: 1G, walltime: '1h', partition: 'a b'}]\n", "profiles.0.partition: 'a b' is not a Slurm name"),
        ("partitions: [interactive, 'x;y']\n", "partitions.1: 'x;y' is not a Slurm name"),
        ("allowed_users: ['bad user']\n", "allowed_users.0: 'bad user' is not a valid user name"),
        ("hub_connect_ip: \"1.2.3.4\\n\"\n", "hub_connect_ip: '1.2.3.4\\n' contains a line break"),
        ("[1, 2]\n", "the site file must be a mapping"),
        ("port: [\n", "not valid YAML"),
    ],
)
def test_site_errors_name_the_key_and_value(tmp_path: Path, text: str, words: str) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(text)
    with pytest.raises(SiteError) as exc:
        load_site(f, environ={})
    assert words in str(exc.value)
    assert str(f) in str(exc.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    f = tmp_path / "site.yaml"
    f.write_text("prot: 8000\nport: eighty\nmax_walltime: forever\nprofiles: [{name: x, cpu: 1, memory: lots, walltime: '1h'}]\n")
    with pytest.raises(SiteError) as exc:
        load_site(f, environ={})
    paths = sorted(p.path for p in exc.value.problems)
    assert paths == ["max_walltime", "port", "profiles.0.cpu", "profiles.0.cpus", "profiles.0.memory", "prot"]


def test_cross_checks_are_all_reported() -> None:
    with pytest.raises(SiteError) as exc:
        site_from_dict(
            {
                "default_partition": "gpu",
                "base_url": "hub/",
                "profiles": [
                    {"name": "a", "cpus": 9, "memory": "64G", "walltime": "1h", "partition": "burst"},
                    {"name": "a", "cpus": 1, "memory": "1G", "walltime": "1h"},
                ],
            }
        )
    assert sorted(p.path for p in exc.value.problems) == [
        "base_url", "default_partition", "profiles.0.cpus", "profiles.0.memory", "profiles.0.partition", "profiles.1.name",
    ]


def test_apply_site_configures_hub_spawner_and_culler(tmp_path: Path) -> None:
    site = load_site(EXAMPLE, environ={"SANDFILL_HUB_STATE_DIR": str(tmp_path / "hub")})
    c = Config()
    apply_site(c, site)
    assert c.JupyterHub.spawner_class == "sandfill"
    assert c.JupyterHub.hub_connect_ip == "10.0.0.5"
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.BackfillSlurmSpawner.slurm_conf == "/etc/slurm/slurm.conf"
    assert c.BackfillSlurmSpawner.partitions == ["interactive", "burst", "gpu"]
    assert c.BackfillSlurmSpawner.profiles == list(site.profiles)  # typed, not formatted back to text
    assert c.BackfillSlurmSpawner.start_timeout == 900 and c.BackfillSlurmSpawner.poll_interval == 30
    (svc,) = c.JupyterHub.services
    assert svc["name"] == "idle-culler" and "jupyterhub_idle_culler" in svc["command"]
    assert "--timeout=3600" in svc["command"] and "--cull-every=300" in svc["command"]
    (role,) = c.JupyterHub.load_roles
    assert role["services"] == ["idle-culler"] and role["scopes"] == CULLER_SCOPES
    assert (tmp_path / "hub").stat().st_mode & 0o777 == 0o700


def test_port_route_is_replaced_at_config_load(tmp_path: Path) -> None:
    from jupyterhub import apihandlers

    from sandfill.hub.handlers import PORT_ROUTE, PortReportHandler

    apply_site(Config(), load_site(EXAMPLE, environ={"SANDFILL_HUB_STATE_DIR": str(tmp_path)}))
    routes = [h for h in apihandlers.default_handlers if h[0] == PORT_ROUTE]
    assert routes == [(PORT_ROUTE, PortReportHandler)]


def test_the_example_puts_every_user_on_a_subdomain_with_host_only_cookies(tmp_path: Path) -> None:
    site = load_site(EXAMPLE, environ={"SANDFILL_HUB_STATE_DIR": str(tmp_path)})
    assert site.subdomain_host == "https://hub.example.org"
    c = Config()
    apply_site(c, site)
    assert c.JupyterHub.subdomain_host == "https://hub.example.org"
    assert c.JupyterHub.cookie_host_prefix_enabled is True  # https: no cookie tossing onto the hub


def test_a_plain_http_subdomain_host_has_no_secure_cookie_prefix_and_none_means_one_origin(tmp_path: Path) -> None:
    c = Config()
    apply_site(c, site_from_dict({"state_dir": str(tmp_path), "subdomain_host": "http://localhost:8000"}))
    assert c.JupyterHub.subdomain_host == "http://localhost:8000"
    assert "cookie_host_prefix_enabled" not in c.JupyterHub
    c = Config()
    apply_site(c, site_from_dict({"state_dir": str(tmp_path)}))
    assert "subdomain_host" not in c.JupyterHub
    env = {"SANDFILL_HUB_SUBDOMAIN_HOST": "https://jh.example.org:8443"}
    assert load_site(None, environ={**env, "SANDFILL_HUB_STATE_DIR": str(tmp_path)}).subdomain_host == "https://jh.example.org:8443"


@pytest.mark.parametrize(
    "value",
    [
        "hub.example.org",  # no scheme (JupyterHub would guess https)
        "ftp://hub.example.org",
        "https://hub.example.org/",
        "https://hub.example.org/hub",
        "https://hub.example.org?x=1",
        "https://alice@hub.example.org",
        "https://10.0.0.5",  # an IP address has no subdomains
        "http://127.0.0.1:8000",
        "https://Hub.Example.org",
        "https://hub.example.org:0",
        "https://hub.example.org:70000",
        "https://-hub.example.org",
        "https://hub..example.org",
        "https://hub.example.org\n",
        "https://hub.example.org\nc.JupyterHub.x=1",
        "https://*.example.org",
    ],
)
def test_a_bad_subdomain_host_is_refused_naming_it(value: str) -> None:
    with pytest.raises(SiteError) as exc:
        site_from_dict({"subdomain_host": value})
    assert [p.path for p in exc.value.problems] == ["subdomain_host"]
    assert repr(value.strip() if "\n" not in value else value) in str(exc.value)


def test_the_service_listens_on_loopback_by_default_and_where_the_site_says() -> None:
    default = site_from_dict({})
    assert (default.service_ip, default.service_port, default.service_connect_ip) == ("127.0.0.1", None, None)
    site = site_from_dict({"service_ip": "0.0.0.0", "service_port": "8090", "service_connect_ip": "Login1.example.org"})
    assert (site.service_ip, site.service_port, site.service_connect_ip) == ("0.0.0.0", 8090, "Login1.example.org")
    assert site_from_dict({"service_ip": "::1", "service_connect_ip": "fe80::1"}).service_ip == "::1"


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        ({"service_ip": "login1"}, "service_ip", "'login1' is not an IP address"),
        ({"service_ip": "10.0.0.5\nc.JupyterHub.x=1"}, "service_ip", "line break"),
        ({"service_port": 70000}, "service_port", "70000 is not a TCP port"),
        ({"service_port": "80a"}, "service_port", "'80a' is not a whole number"),
        ({"service_connect_ip": "bad host!"}, "service_connect_ip", "'bad host!' is not a host name"),
        ({"service_connect_ip": "0.0.0.0"}, "service_connect_ip", "'0.0.0.0' is every interface"),
        ({"service_ip": "0.0.0.0"}, "service_connect_ip", "must be set when service_ip is '0.0.0.0'"),
        ({"service_ip": "::"}, "service_connect_ip", "must be set when service_ip is '::'"),
    ],
)
def test_a_bad_service_address_is_refused_naming_it(raw: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(SiteError) as exc:
        site_from_dict(raw)
    assert [p.path for p in exc.value.problems] == [key]
    assert words in str(exc.value)


# ---- what every job of a site runs with: Python environment, prologue, #SBATCH options, GRES ----


def test_the_example_sets_the_jobs_environment_prologue_and_partition_options(tmp_path: Path) -> None:
    site = load_site(EXAMPLE, environ={"SANDFILL_HUB_STATE_DIR": str(tmp_path)})
    assert site.python_env == "/opt/sandfill/venv" and site.hub_connect_url is None
    assert site.prologue == ("module load python/3.11", "source /etc/profile.d/site.sh")
    assert site.partition_settings["gpu"].gres == {"gpu": 2}
    assert site.partition_settings["burst"].sbatch == ("--qos=burst",)
    assert site.profiles[1].sbatch == ("--mail-type=END,FAIL",)
    c = Config()
    apply_site(c, site)
    s = c.BackfillSlurmSpawner
    assert s.singleuser_bin_dir == "/opt/sandfill/venv/bin"
    assert s.script_prologue == "module load python/3.11\nsource /etc/profile.d/site.sh"
    assert s.partition_sbatch == {"burst": ["--qos=burst"], "gpu": ["--constraint=a100"]}
    assert s.partition_gres == {"gpu": {"gpu": 2}}
    assert "hub_connect_url" not in c.JupyterHub  # JupyterHub builds it from hub_connect_ip


def test_hub_connect_url_is_the_jobs_way_to_the_hub(tmp_path: Path) -> None:
    c = Config()
    apply_site(c, site_from_dict({"hub_connect_url": "https://hub-api.cluster.local:8081", "state_dir": str(tmp_path)}))
    assert c.JupyterHub.hub_connect_url == "https://hub-api.cluster.local:8081"


OPTIONS_OK = ["--qos=gpu", "--constraint=a100&ib", "--constraint=v100|a100", "--gres=gpu:a100:1,nvme:1", "--licenses=matlab@lic:2",
              "--exclusive", "--mail-type=END,FAIL", "--reservation=maint", "--wckey=ml", "--nice=10", "--hint=nomultithread",
              "--threads-per-core=1", "--tmp=10G"]


def test_every_whitelisted_sbatch_option_is_accepted_on_a_partition_and_a_profile() -> None:
    site = site_from_dict({
        "partition_settings": {"interactive": {"sbatch": OPTIONS_OK}},
        "profiles": [{"name": "p", "cpus": 1, "memory": "1G", "walltime": "1h", "sbatch": OPTIONS_OK}],
    })
    assert site.partition_settings["interactive"].sbatch == tuple(OPTIONS_OK) == site.profiles[0].sbatch
    from sandfill.hub.script import _DIRECTIVE

    assert all(_DIRECTIVE.fullmatch(f"#SBATCH {o}") for o in OPTIONS_OK)  # and the script takes each


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        ({"prologue": ["module load a\nmodule load b"]}, "prologue.0", "contains a line break"),
        ({"prologue": ["source x\0"]}, "prologue.0", "contains a line break"),
        ({"prologue": ["  "]}, "prologue.0", "is an empty line"),
        ({"prologue": "module load a"}, "prologue", "tuple"),
        ({"python_env": "venv"}, "python_env", "'venv' is not an absolute path"),
        ({"python_env": "/opt/../etc"}, "python_env", "is not an absolute path"),
        ({"python_env": "/opt/my venv"}, "python_env", "is not an absolute path"),
        ({"python_env": "/opt/$(id)"}, "python_env", "is not an absolute path"),
        ({"hub_connect_url": "http://10.0.0.5"}, "hub_connect_url", "is not a URL such as"),
        ({"hub_connect_url": "http://0.0.0.0:8081"}, "hub_connect_url", "is not a URL such as"),
        ({"hub_connect_url": "ftp://hub:21"}, "hub_connect_url", "is not a URL such as"),
        ({"hub_connect_url": "http://hub:8081/?x=1"}, "hub_connect_url", "is not a URL such as"),
        ({"hub_connect_ip": "10.0.0.5 evil"}, "hub_connect_ip", "is not a host name or IP address"),
        ({"partition_settings": {"interactive": {"sbatch": ["--uid=0"]}}}, "partition_settings.interactive.sbatch.0",
         "'--uid=0': --uid is not an option a site may add (allowed: --qos, --constraint"),
        ({"partition_settings": {"interactive": {"sbatch": ["--partition=root"]}}}, "partition_settings.interactive.sbatch.0",
         "--partition is not an option a site may add"),
        ({"partition_settings": {"interactive": {"sbatch": ["--account=x"]}}}, "partition_settings.interactive.sbatch.0",
         "--account is not an option a site may add"),
        ({"partition_settings": {"interactive": {"sbatch": ["#SBATCH --qos=x"]}}}, "partition_settings.interactive.sbatch.0",
         "is not an '--option=value' for an #SBATCH line"),
        ({"partition_settings": {"interactive": {"sbatch": ["--qos=x\n#SBATCH --uid=0"]}}}, "partition_settings.interactive.sbatch.0",
         "contains a line break"),
        ({"partition_settings": {"interactive": {"sbatch": ["--qos=a;b"]}}}, "partition_settings.interactive.sbatch.0", "--qos takes a QOS name"),
        ({"partition_settings": {"interactive": {"sbatch": ["--qos"]}}}, "partition_settings.interactive.sbatch.0", "--qos takes a QOS name"),
        ({"partition_settings": {"interactive": {"sbatch": ["--exclusive=user"]}}}, "partition_settings.interactive.sbatch.0", "--exclusive takes no value"),
        ({"partition_settings": {"interactive": {"sbatch": ["--mail-type=END,SOMETIMES"]}}}, "partition_settings.interactive.sbatch.0", "--mail-type takes"),
        ({"partition_settings": {"interactive": {"sbatch": ["--tmp=lots"]}}}, "partition_settings.interactive.sbatch.0", "--tmp takes an amount of disk"),
        ({"partition_settings": {"interactive": {"sbatch": ["--constraint=a b"]}}}, "partition_settings.interactive.sbatch.0", "--constraint takes"),
        ({"profiles": [{"name": "p", "cpus": 1, "memory": "1G", "walltime": "1h", "sbatch": ["--chdir=/"]}]}, "profiles.0.sbatch.0",
         "--chdir is not an option a site may add"),
        ({"partition_settings": {"gpu": {"sbatch": ["--qos=x"]}}}, "partition_settings.gpu", "'gpu' is not in partitions"),
        ({"partition_settings": {"interactive": {"gres": {"gpu": 0}}}}, "partition_settings.interactive.gres.gpu", "greater than or equal to 1"),
        ({"partition_settings": {"interactive": {"gres": {"gpu": "two"}}}}, "partition_settings.interactive.gres.gpu", "'two' is not a whole number"),
        ({"partition_settings": {"interactive": {"gres": {"GPU:x": 1}}}}, "partition_settings.interactive.gres.GPU:x", "is not a GRES name"),
        ({"partition_settings": {"interactive": {"gres": {"gpu": 2}, "sbatch": ["--gres=gpu:1"]}}}, "partition_settings.interactive.sbatch",
         "a --gres line contradicts this partition's gres choices"),
        ({"partition_settings": {"interactive": {"gpus": 2}}}, "partition_settings.interactive.gpus", "unknown key"),
    ],
)
def test_a_bad_job_setting_is_refused_naming_the_key_and_the_line(raw: dict, path: str, words: str) -> None:
    with pytest.raises(SiteError) as exc:
        site_from_dict(raw)
    problems = [p for p in exc.value.problems if p.path.startswith(path)]
    assert problems and words in str(problems[0]), exc.value


def test_a_bad_sbatch_line_stops_the_hub_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """jupyterhub_config.py loads the site file: an option outside the whitelist is a refusal
    when the hub starts, naming the key and the line; nothing is configured."""
    import runpy

    f = tmp_path / "site.yaml"
    f.write_text(f"state_dir: {tmp_path / 'hub'}\npartition_settings:\n  interactive: {{sbatch: ['--qos=x', '--uid=0']}}\n")
    monkeypatch.setenv("SANDFILL_HUB_SITE", str(f))
    c = Config()
    config_py = Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"
    with pytest.raises(SiteError) as exc:
        runpy.run_path(str(config_py), init_globals={"get_config": lambda: c})
    assert "partition_settings.interactive.sbatch.1: '--uid=0': --uid is not an option a site may add" in str(exc.value)
    assert str(f) in str(exc.value)
    assert not c and not (tmp_path / "hub").exists()


# ---- docs/deploy.md and the example: every key documented, real and exercised ----------

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"


def _example_keys() -> set[str]:
    """The example's keys: set ones, and ones shown commented out (``# exec_host: …``)."""
    import re

    import yaml

    text = EXAMPLE.read_text()
    return set(yaml.safe_load(text)) | set(re.findall(r"(?m)^#\s*([a-z_]+):\s", text))


def _documented(doc: str, key: str) -> bool:
    return f"| `{key}` |" in doc


def test_every_key_of_the_site_file_is_documented_in_deploy_md() -> None:
    from sandfill.hub.site import PartitionSettings, Profile, SiteConfig

    doc = DEPLOY.read_text()
    for model in (SiteConfig, Profile, PartitionSettings):
        missing = [k for k in model.model_fields if not _documented(doc, k)]
        assert not missing, f"{model.__name__} keys without a row in docs/deploy.md: {missing}"


def test_every_key_of_the_example_is_a_site_key_exercised_by_a_test() -> None:
    import re

    from sandfill.hub.site import SiteConfig

    keys = _example_keys()
    assert keys - set(SiteConfig.model_fields) == set()
    here = Path(__file__).resolve()
    mine = here.read_text().split("# ---- docs/deploy.md and the example")[0]  # not these checks themselves
    tests = "\n".join([mine, *(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p != here)])
    assert [k for k in sorted(keys) if not re.search(rf"\b{k}\b", tests)] == []
    assert {"python_env", "prologue", "partition_settings", "hub_connect_url"} <= keys


def test_the_minimal_site_file_in_deploy_md_loads() -> None:
    import yaml

    doc = DEPLOY.read_text()
    block = doc.split("### A minimal site file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    site = site_from_dict(yaml.safe_load(block))
    assert site.partition_settings["gpu"].gres == {"gpu": 2} and site.python_env == "/opt/sandfill/venv"


def test_the_sbatch_whitelist_in_deploy_md_is_the_codes() -> None:
    import re

    from sandfill.hub.site import SBATCH_OPTIONS

    doc = DEPLOY.read_text()
    table = doc.split("**Extra `#SBATCH` options**", 1)[1].split("Everything else", 1)[0]
    assert re.findall(r"(?m)^\| `--([a-z-]+)` \|", table) == list(SBATCH_OPTIONS)


def test_allow_all_lets_every_account_in_instead_of_a_list(tmp_path: Path) -> None:
    c = Config()
    apply_site(c, site_from_dict({"allow_all": True, "state_dir": str(tmp_path)}))
    assert c.Authenticator.allow_all is True and "allowed_users" not in c.Authenticator
    c = Config()
    apply_site(c, site_from_dict({"allowed_users": ["ann"], "state_dir": str(tmp_path)}))
    assert c.Authenticator.allowed_users == {"ann"} and "allow_all" not in c.Authenticator
