"""Helpers for sandfill's tests (and sites testing their own deployment)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandfill.slurm import sbatch, scancel, sdiag
from sandfill.slurm.client import SlurmClient


def sleep_script(seconds: int) -> str:
    """A batch script that sleeps (a "rock" or a stand-in job)."""
    return f"#!/bin/sh\nsleep {int(seconds)}\n"


class TestSlurm(SlurmClient):
    """A :class:`SlurmClient` with the blocking calls tests and benchmarks make from
    outside an event loop (submit, cancel, the controller's RPC counters)."""

    __test__ = False  # not a pytest class

    def submit_sync(self, script: str, args: Sequence[str] = ()) -> str:
        return sbatch.parse_job_id(self.runner.check(sbatch.submit_argv(args), input=script))

    def cancel_sync(self, job_ids: Iterable[str]) -> None:
        """Cancel ``job_ids``; a job that already left is not an error."""
        ids = list(job_ids)
        if ids:
            self.runner.run(scancel.cancel_argv(ids))

    def sdiag_rpcs_sync(self) -> dict[str, int]:
        return sdiag.parse_sdiag_rpcs(self.runner.check(sdiag.rpcs_argv()))


#: Debian chromium, headless, with nothing reaching out to the network (nothing can here).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright: object) -> object:
    """A headless Debian chromium through playwright (never ``playwright install``)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # type: ignore[attr-defined]


def loopback_dask_config(slurm_conf: str, root: str) -> dict[str, object]:
    """dask.config for sandfill's Dask side in tests and benchmarks: the given Slurm, the
    scheduler and dashboard on loopback, TLS material and worker logs under ``root``."""
    return {
        "jobqueue.sandfill.slurm-conf": str(slurm_conf),
        "jobqueue.sandfill.scheduler-options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        "jobqueue.sandfill.shared-temp-directory": f"{root}/tls",
        "jobqueue.sandfill.log-directory": f"{root}/logs",
        "jobqueue.sandfill.memory": "1GiB",
    }


@contextmanager
def booted_devcluster(prefix: str, **up: Any) -> Iterator[Any]:
    """A devcluster of its own in a fresh world-traversable directory under /tmp (the job
    users must reach it), booted with the ``DevCluster.up`` options ``up``; afterwards stopped
    by its PIDs and removed."""
    from sandfill.dev.devcluster import DevCluster

    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    cluster = DevCluster(root / "dc")
    try:
        cluster.up(log=lambda *_: None, **up)
        yield cluster
    finally:
        cluster.down(log=lambda *_: None)
        shutil.rmtree(root, ignore_errors=True)
