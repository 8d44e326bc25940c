from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dask
import pytest


@pytest.fixture
def lab_cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    """The Dask settings the server's cluster manager reads: the devcluster's for tests marked
    ``slurm``; otherwise private directories under tmp_path and a Slurm that does not exist
    (route tests that must create nothing need no Slurm)."""
    if request.node.get_closest_marker("slurm"):
        yield request.getfixturevalue("dask_cfg")
        return
    cfg = {
        "jobqueue.sandfill.slurm-conf": str(tmp_path / "no-slurm.conf"),
        "jobqueue.sandfill.shared-temp-directory": str(tmp_path / "tls"),
        "jobqueue.sandfill.log-directory": str(tmp_path / "logs"),
        "sandfill.lab.connection-dir": str(tmp_path / "connections"),
    }
    with dask.config.set(cfg):
        yield cfg


@pytest.fixture
def jp_server_config(lab_cfg: dict[str, object]) -> dict[str, object]:
    return {"ServerApp": {"jpserver_extensions": {"sandfill.lab": True}}}
