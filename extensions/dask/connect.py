"""Attach a kernel to a cluster that the lab extension manages: ``connect("name")``.

The manager writes a connection file per cluster (scheduler address and the client's TLS
material, mode 600) under ``sandfill.lab.connection-dir``; ``connect`` reads it and returns a
``Client``. ``view("name")`` gives the notebook widget for it, reading the same model as the
lab panel from the cluster's scheduler."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from distributed import Client
from distributed.security import Security

import dask

#: a managed cluster's name (also its connection file's name)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def connection_dir() -> Path:
    return Path(os.path.expanduser(dask.config.get("sandfill.lab.connection-dir")))


def connection_file(name: str) -> Path:
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"not a cluster name: {name!r}")
    return connection_dir() / f"{name}.json"


def read_connection(name: str) -> dict[str, Any]:
    path = connection_file(name)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pass
    known = []
    for p in sorted(connection_dir().glob("*.json")) if connection_dir().exists() else []:
        info = json.loads(p.read_text())
        if info.get("id") == name:  # an id works as well as a name
            return info
        known.append(p.stem)
    raise LookupError(f"no managed cluster named {name!r} (known: {', '.join(known) or 'none'})")


def security_for(info: dict[str, Any]) -> Security | None:
    tls = info.get("tls")
    if not tls:
        return None
    return Security(
        tls_ca_file=tls["ca_file"], tls_client_cert=tls["cert"], tls_client_key=tls["key"], require_encryption=True
    )


def connect(name: str, **kwargs: Any) -> Client:
    """A ``Client`` for the managed cluster ``name`` (or its id)."""
    info = read_connection(name)
    return Client(info["scheduler_address"], security=security_for(info), **kwargs)


class RemoteSource:
    """The widget's view of a managed cluster: the scheduler's sandfill handlers."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def model(self) -> dict[str, Any]:
        return self.client.sync(self.client.scheduler.sandfill_model)

    def scale(self, n: int) -> None:
        self.client.sync(self.client.scheduler.sandfill_scale, n=int(n))

    def adapt(self, minimum: int, maximum: int) -> None:
        self.client.sync(self.client.scheduler.sandfill_adapt, minimum=int(minimum), maximum=int(maximum))


def view(cluster: str | Client) -> Any:
    """The notebook widget (jobs, Scale, Adapt) for a managed cluster."""
    from sandfill.dask.widget import ClusterWidget

    client = connect(cluster) if isinstance(cluster, str) else cluster
    return ClusterWidget(RemoteSource(client))
