from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
from sandfill.devcluster import DevCluster


@pytest.fixture
def dask_cfg(devcluster: DevCluster, tmp_path: Path) -> Iterator[dict[str, object]]:
    """Loopback-only scheduler and dashboard, private TLS/log dirs, the devcluster's Slurm."""
    tmp_path.chmod(0o755)
    cfg = {
        "jobqueue.sandfill.slurm-conf": str(devcluster.slurm_conf),
        "jobqueue.sandfill.scheduler-options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        "jobqueue.sandfill.shared-temp-directory": str(tmp_path / "tls"),
        "jobqueue.sandfill.log-directory": str(tmp_path / "logs"),
        "jobqueue.sandfill.queue": "burst",
        "jobqueue.sandfill.memory": "1GiB",
        "jobqueue.sandfill.death-timeout": 30,
    }
    with dask.config.set(cfg):
        yield cfg
