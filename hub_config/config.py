"""Turn a :class:`~sandfill.hub.site.SiteConfig` into JupyterHub configuration.

Called by ``jupyterhub_config.py``; everything a site changes goes through the site file or
the environment (see :mod:`sandfill.hub.site`). The typed values go straight to the traitlets:
durations as :class:`~sandfill.units.Duration` (exact seconds), memory in MiB, profiles as
validated :class:`~sandfill.hub.site.Profile` objects -- nothing is formatted back to text.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from sandfill.hub.handlers import extra_handlers, install_port_handler
from sandfill.hub.site import SiteConfig
from sandfill.units import Duration

TEMPLATES = Path(__file__).with_name("templates")
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def proxy_command() -> list[str]:
    """configurable-http-proxy: the copy installed next to this Python (make setup puts it
    in the venv), else the one on PATH."""
    here = Path(sys.executable).parent / "configurable-http-proxy"
    if here.exists():
        return [str(here)]
    found = shutil.which("configurable-http-proxy")
    return [found] if found else ["configurable-http-proxy"]


def apply_site(c: Any, site: SiteConfig) -> None:
    """Fill the JupyterHub config object ``c`` from ``site``."""
    import batchspawner  # noqa: F401  (must be imported at config load: its API route)

    install_port_handler()  # …which we then replace by one that accepts only the port

    state = Path(site.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)  # cookie secret, database: root only (the jobs never read it)
    _hub(c, site, state)
    c.JupyterHub.spawner_class = "sandfill"
    _spawner(c.BackfillSlurmSpawner, site)
    _culler(c, site)


def _hub(c: Any, site: SiteConfig, state: Path) -> None:
    """Where the hub listens, its state, and who may log in (the site's accounts, PAM)."""
    c.JupyterHub.ip = site.ip
    c.JupyterHub.port = site.port
    c.JupyterHub.hub_ip = site.hub_ip
    c.JupyterHub.hub_port = site.hub_port
    c.JupyterHub.hub_connect_ip = site.hub_connect_ip
    if site.hub_connect_url:
        c.JupyterHub.hub_connect_url = site.hub_connect_url
    c.JupyterHub.base_url = site.base_url
    _origins(c, site)
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{site.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    # servers are Slurm jobs: they outlive a hub restart, which must not stop them
    c.JupyterHub.cleanup_servers = False

    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.open_sessions = False
    c.Authenticator.admin_users = set(site.admin_users)
    if site.allow_all:
        c.Authenticator.allow_all = True
    else:
        c.Authenticator.allowed_users = set(site.allowed_users)

    # sandfill's pages and API, and the port route
    c.JupyterHub.extra_handlers = list(extra_handlers)
    c.JupyterHub.template_paths = [str(TEMPLATES)]


def _origins(c: Any, site: SiteConfig) -> None:
    """Per-user subdomains: each server on ``<user>.<host>``, an origin of its own, so a page
    a user serves cannot read another's server or the hub's API with the visitor's cookies
    (the hub's login cookie is host-only and never reaches a user's subdomain). Over https
    the hub's cookies also get the ``__Host-`` prefix, so a user's subdomain cannot toss a
    cookie onto the hub's host (it needs Secure cookies, hence not for plain-http demos)."""
    if not site.subdomain_host:
        return
    c.JupyterHub.subdomain_host = site.subdomain_host
    if site.subdomain_host.startswith("https://"):
        c.JupyterHub.cookie_host_prefix_enabled = True


def _spawner(s: Any, site: SiteConfig) -> None:
    """The spawner's traitlets, typed (see :class:`~sandfill.hub.settings.SpawnerSettings`)."""
    if site.slurm_conf:
        s.slurm_conf = site.slurm_conf
    s.partitions = list(site.partitions)
    s.default_partition = site.default_partition
    s.max_cpus = site.max_cpus
    s.max_memory = site.max_memory  # MiB
    s.max_walltime = Duration(site.max_walltime)
    s.profiles = list(site.profiles)
    _addresses(s, site)
    _site_jobs(s, site)
    s.walltime_warning = Duration(site.walltime_warning)
    s.start_timeout = site.start_timeout  # JupyterHub's own traitlets: whole seconds
    s.http_timeout = 120
    s.poll_interval = site.poll_interval  # cheap: poll() reads the shared poller's cache
    s.default_url = "/lab"


def _site_jobs(s: Any, site: SiteConfig) -> None:
    """What the site adds to every job: its Python environment, its prologue, and per partition
    the extra #SBATCH options and the GRES users may ask for."""
    if site.python_env:
        s.singleuser_bin_dir = f"{site.python_env.rstrip('/')}/bin"
    s.script_prologue = "\n".join(site.prologue)
    s.partition_sbatch = {name: list(p.sbatch) for name, p in site.partition_settings.items() if p.sbatch}
    s.partition_gres = {name: dict(p.gres) for name, p in site.partition_settings.items() if p.gres}


def _addresses(s: Any, site: SiteConfig) -> None:
    """Where a server listens (its node's address toward the hub, unless ``server_ip`` says)
    and how the hub reaches it (``exec_host``, else the node through ``node_addresses``)."""
    if site.server_ip:
        s.ip = site.server_ip
        s.bind_node_address = False
    if site.exec_host:
        s.exec_host = site.exec_host
    if site.node_addresses == "slurm":
        s.exec_host_from_slurm = True
    elif site.node_addresses:
        s.exec_host_map = dict(site.node_addresses)


def _culler(c: Any, site: SiteConfig) -> None:
    """The idle culler, as a hub service with a role of explicit scopes."""
    c.JupyterHub.services = [
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={site.cull_idle}",
                f"--cull-every={site.cull_every}",
            ],
        }
    ]
    c.JupyterHub.load_roles = [
        {"name": "idle-culler", "description": "Stop idle servers", "scopes": CULLER_SCOPES, "services": ["idle-culler"]}
    ]
