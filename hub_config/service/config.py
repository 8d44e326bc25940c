"""The hub's side of the ``sandfill`` service: the managed service and the roles it needs.

Call :func:`configure_services` after :func:`sandfill.hub.config.apply_site` (it adds to the
services and roles that one sets). JupyterHub 6.1 starts the service with the hub, and polls
it (every 30 s, :attr:`jupyterhub.spawner.Spawner.poll_interval`'s default): a service that
exited is started again. It runs as the hub's user (root on the devcluster: its ``squeue``
sees every job even with ``PrivateData=jobs``).

Roles:

- ``user`` (every user): JupyterHub's ``self``, plus ``access:services!service=sandfill``;
- ``server`` (a single-user server's token): JupyterHub's two scopes, plus the same access,
  so a user's JupyterLab server, its Dask clusters and workers can ask the service;
- the service itself needs no hub API scope: it identifies callers with their own tokens.
  Admins reach everything through JupyterHub's ``admin`` role (``access:services``,
  ``read:metrics``); ``read:metrics`` is also one of the scopes its OAuth client may ask
  for, so an admin's browser session carries it.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.parse
from typing import Any

from sandfill.hub.service.app import ACCESS_SCOPE, METRICS_SCOPE, SERVICE_NAME
from sandfill.hub.site import SiteConfig
from sandfill.slurm.remote import URL_ENV

USER_SCOPES = ["self", ACCESS_SCOPE]
SERVER_SCOPES = ["users:activity!user", "access:servers!server", ACCESS_SCOPE]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _http(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def service_spec(site: SiteConfig, port: int | None = None) -> dict[str, Any]:
    """The managed service, listening on the site's ``service_ip`` (loopback by default; the
    proxy routes /services/sandfill/ there). No API token of its own is configured: the hub
    makes one and gives it to the service's process only."""
    env = {"SLURM_CONF": site.slurm_conf or os.environ.get("SLURM_CONF", "")}
    return {
        "name": SERVICE_NAME,
        "url": _http(site.service_ip, port or site.service_port or free_port(site.service_ip)),
        "command": [sys.executable, "-m", "sandfill.hub.service"],
        "environment": {k: v for k, v in env.items() if v},
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [ACCESS_SCOPE, METRICS_SCOPE],
        "display": False,
    }


def client_url(site: SiteConfig, port: int) -> str:
    """The service as server jobs reach it (``SANDFILL_SERVICE_URL``): the address compute
    nodes connect to, straight to the service (not through the proxy, whose per-service
    subdomain a compute node may not resolve)."""
    host = site.service_connect_ip or site.service_ip
    return f"{_http(host, port)}/services/{SERVICE_NAME}/"


def configure_services(c: Any, site: SiteConfig) -> None:
    """Add the ``sandfill`` service and its roles to the hub's config ``c``, and give every
    server job the service's URL (its token is the server's own ``JUPYTERHUB_API_TOKEN``,
    whose ``server`` role may access the service)."""
    spec = service_spec(site)
    port = int(urllib.parse.urlsplit(spec["url"]).port or 80)
    c.JupyterHub.services = [*_listed(c.JupyterHub, "services"), spec]
    c.JupyterHub.load_roles = [
        *_listed(c.JupyterHub, "load_roles"),
        {"name": "user", "description": "A user, who may ask the sandfill service", "scopes": USER_SCOPES},
        {"name": "server", "description": "A user's server, which may ask the sandfill service", "scopes": SERVER_SCOPES},
    ]
    spawner = c.BackfillSlurmSpawner
    env = dict(spawner.environment) if "environment" in spawner else {}
    spawner.environment = {**env, URL_ENV: client_url(site, port)}


def _listed(section: Any, key: str) -> list[Any]:
    """What the config already lists under ``key`` (nothing when it was never set)."""
    return list(section[key]) if key in section else []
