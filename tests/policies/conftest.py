"""Fixtures of the policy tests: the Atlas trace, and a private devcluster for the live
policy tests (marked ``slurm``): they apply policies, so they never touch the session's
shared devcluster. Booted once, only when a test asks for it (4 nodes x 8 CPUs, in a
world-traversable directory under /tmp), and stopped by its PIDs; if it cannot boot, the
tests FAIL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, booted_devcluster
from sandfill.policies.live.state import read_live
from sandfill.slurm.commands import Runner, wait_until

DATA = Path(__file__).parent / "live" / "data"
BASE_POLICY = DATA / "base-policy.yaml"  # no preemption: see its header
BAD_POLICIES = Path(__file__).parent / "document" / "bad_policies"
TRACES = Path(__file__).parents[2] / "policies" / "traces"  # shipped: see its README
ATLAS = TRACES / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"


@pytest.fixture(scope="session")
def private_cluster() -> Iterator[DevCluster]:
    with booted_devcluster("sandfill-policies-", nodes=4, cpus=8, policy=BASE_POLICY) as cluster:
        yield cluster


@pytest.fixture
def conf(private_cluster: DevCluster) -> str:
    return str(private_cluster.slurm_conf)


@pytest.fixture
def runner(conf: str) -> Runner:
    return Runner(conf)


@pytest.fixture
def client(conf: str) -> Iterator[TestSlurm]:
    """A client whose jobs are cancelled (and gone from the nodes) after the test."""
    c = TestSlurm(conf)
    yield c
    left = list(c.squeue_sync())
    if left:
        c.cancel_sync(left)
        wait_until("the test's jobs to leave the queue", lambda: not c.squeue_sync(), timeout=60)


def take_snapshot(
    runner: Runner, fragment: Path
) -> tuple[bytes, tuple[str, str, str], list[str]]:
    """Fragment bytes, raw live outputs, and the history directory's listing."""
    hist = fragment.parent / "policy-history"
    files = sorted(p.name for p in hist.iterdir()) if hist.is_dir() else []
    return fragment.read_bytes(), read_live(runner).fingerprint(), files


@pytest.fixture
def snapshot():
    return take_snapshot


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def bad_policies_dir() -> Path:
    return BAD_POLICIES


@pytest.fixture
def traces_dir() -> Path:
    return TRACES


@pytest.fixture(scope="session")
def atlas():
    from sandfill.policies.sim.trace import read_swf

    return read_swf(ATLAS)
