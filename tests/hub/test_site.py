"""The site file and environment overrides (no Slurm needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config

from sandfill.hub.config import CULLER_SCOPES, apply_site
from sandfill.hub.site import DEFAULT_PROFILES, SiteError, load_site

EXAMPLE = Path(__file__).resolve().parents[2] / "hub_config" / "site.example.yaml"


def test_example_site_file_loads() -> None:
    site = load_site(EXAMPLE, environ={})
    assert site.hub_connect_ip == "10.0.0.5"
    assert site.partitions == ("interactive", "burst")
    assert [p.name for p in site.profiles] == ["small", "large"]
    assert site.max_walltime_s == 8 * 3600 and site.max_memory_mb == 32768


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    f = tmp_path / "site.yaml"
    f.write_text("port: 9000\npartitions: [interactive, burst]\n")
    site = load_site(f, environ={"SANDFILL_HUB_PORT": "9100", "SANDFILL_HUB_CONNECT_IP": "10.1.2.3", "SLURM_CONF": "/x/slurm.conf"})
    assert site.port == 9100 and site.hub_connect_ip == "10.1.2.3" and site.slurm_conf == "/x/slurm.conf"
    assert site.profiles == DEFAULT_PROFILES[:0] + site.profiles and site.profiles  # defaults filled in


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("prot: 8000\n", "unknown site setting(s): prot"),
        ("port: eighty\n", "port: 'eighty' is not a whole number"),
        ("port: 70000\n", "port: 70000 is not a TCP port"),
        ("default_partition: gpu\n", "default_partition: 'gpu' is not in partitions"),
        ("max_walltime: forever\n", "max_walltime: 'forever' is not a duration"),
        ("profiles: [{name: x, cpus: 99, memory: 1G, walltime: '01:00:00'}]\n", "profiles[x].cpus: 99 is above max_cpus"),
        ("profiles: [{name: x, cpus: 1, memory: 1G, walltime: '01:00:00', qos: high}]\n", "unknown key(s) qos"),
        ("allowed_users: ['bad user']\n", "allowed_users: 'bad user' is not a valid name"),
        ("hub_connect_ip: \"1.2.3.4\\n\"\n", "line break"),
    ],
)
def test_site_errors_name_the_key(tmp_path: Path, text: str, words: str) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(text)
    with pytest.raises(SiteError) as exc:
        load_site(f, environ={})
    assert words in str(exc.value)


def test_apply_site_configures_hub_spawner_and_culler(tmp_path: Path) -> None:
    site = load_site(EXAMPLE, environ={"SANDFILL_HUB_STATE_DIR": str(tmp_path / "hub")})
    c = Config()
    apply_site(c, site)
    assert c.JupyterHub.spawner_class == "sandfill"
    assert c.JupyterHub.hub_connect_ip == "10.0.0.5"
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.BackfillSlurmSpawner.slurm_conf == "/etc/slurm/slurm.conf"
    assert c.BackfillSlurmSpawner.partitions == ["interactive", "burst"]
    (svc,) = c.JupyterHub.services
    assert svc["name"] == "idle-culler" and "jupyterhub_idle_culler" in svc["command"]
    (role,) = c.JupyterHub.load_roles
    assert role["services"] == ["idle-culler"] and role["scopes"] == CULLER_SCOPES
    assert (tmp_path / "hub").stat().st_mode & 0o777 == 0o700


def test_port_route_is_replaced_at_config_load(tmp_path: Path) -> None:
    from jupyterhub import apihandlers

    from sandfill.hub.handlers import PORT_ROUTE, PortReportHandler

    apply_site(Config(), load_site(EXAMPLE, environ={"SANDFILL_HUB_STATE_DIR": str(tmp_path)}))
    routes = [h for h in apihandlers.default_handlers if h[0] == PORT_ROUTE]
    assert routes == [(PORT_ROUTE, PortReportHandler)]
