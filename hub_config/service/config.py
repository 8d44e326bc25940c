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
from typing import Any

from sandfill.hub.service.app import ACCESS_SCOPE, METRICS_SCOPE, SERVICE_NAME
from sandfill.hub.site import SiteConfig

USER_SCOPES = ["self", ACCESS_SCOPE]
SERVER_SCOPES = ["users:activity!user", "access:servers!server", ACCESS_SCOPE]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def service_spec(site: SiteConfig, port: int | None = None) -> dict[str, Any]:
    """The managed service, listening on loopback (the proxy routes /services/sandfill/)."""
    env = {"SLURM_CONF": site.slurm_conf or os.environ.get("SLURM_CONF", "")}
    return {
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port or free_port()}",
        "command": [sys.executable, "-m", "sandfill.hub.service"],
        "environment": {k: v for k, v in env.items() if v},
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [ACCESS_SCOPE, METRICS_SCOPE],
        "display": False,
    }


def configure_services(c: Any, site: SiteConfig) -> None:
    """Add the ``sandfill`` service and its roles to the hub's config ``c``."""
    c.JupyterHub.services = [*_listed(c.JupyterHub, "services"), service_spec(site)]
    c.JupyterHub.load_roles = [
        *_listed(c.JupyterHub, "load_roles"),
        {"name": "user", "description": "A user, who may ask the sandfill service", "scopes": USER_SCOPES},
        {"name": "server", "description": "A user's server, which may ask the sandfill service", "scopes": SERVER_SCOPES},
    ]


def _listed(section: Any, key: str) -> list[Any]:
    """What the config already lists under ``key`` (nothing when it was never set)."""
    return list(section[key]) if key in section else []
