"""Shared fixtures. Tests marked ``slurm`` run against a real devcluster booted once per test
session in its own state directory; if it cannot boot, those tests FAIL (never skip)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest

from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, booted_devcluster, loopback_dask_config
from sandfill.slurm.commands import wait_until

# pytest-jupyter (jp_fetch & co. for the lab extension's route tests) runs coroutine tests on
# its own loop; ours use pytest-asyncio in strict mode (marked).
# fixtures_hub: the live hub (tests/hub and the lab extension's browser tests in tests/lab).
pytest_plugins = ["pytest_jupyter.jupyter_server", "fixtures_hub"]

TEST_POLICY = Path(__file__).parent / "data" / "devcluster-policy.yaml"


@pytest.fixture(scope="session")
def devcluster() -> Iterator[DevCluster]:
    existing = os.environ.get("SANDFILL_TEST_STATE_DIR")
    if existing:  # reuse a cluster booted by `make test` / a developer
        c = DevCluster(existing)
        if not c.is_running():
            c.up(policy=TEST_POLICY, log=lambda *_: None)
        yield c
        return
    t0 = time.monotonic()
    with booted_devcluster("sandfill-test-", policy=TEST_POLICY) as c:
        print(f"\nsingle-host devcluster booted in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        yield c


@pytest.fixture(scope="session")
def devcluster_hosts() -> Iterator[DevCluster]:
    """The site-shaped devcluster (``up --hosts``): the head in this namespace, one network
    namespace per compute node (cpu1, cpu2, bigmem1, gpu1), each with its own NodeAddr. Its
    boot time is printed."""
    t0 = time.monotonic()
    with booted_devcluster("sandfill-hosts-", hosts=True, policy=TEST_POLICY) as c:
        print(f"\n--hosts devcluster booted in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        yield c


@pytest.fixture
def slurm(devcluster: DevCluster) -> Iterator[TestSlurm]:
    """A client for the devcluster; cancels every job the test submitted through it."""
    client = TestSlurm(devcluster.slurm_conf)
    before = set(client.squeue_sync())
    yield client
    after = set(client.squeue_sync()) - before
    if after:
        client.cancel_sync(after)
        wait_until(
            "the test's jobs to leave the nodes",
            lambda: not any(s.running for j, s in client.squeue_sync(after).items()),
            timeout=60,
        )


@pytest.fixture
def dask_cfg(devcluster: DevCluster, tmp_path: Path) -> Iterator[dict[str, object]]:
    """Loopback-only scheduler and dashboard, private TLS/log dirs, the devcluster's Slurm."""
    tmp_path.chmod(0o755)
    cfg = {
        **loopback_dask_config(str(devcluster.slurm_conf), str(tmp_path)),
        "jobqueue.sandfill.queue": "burst",
        "jobqueue.sandfill.death-timeout": 30,
        "sandfill.lab.connection-dir": str(tmp_path / "connections"),
    }
    with dask.config.set(cfg):
        yield cfg
