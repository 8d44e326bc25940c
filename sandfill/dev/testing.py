"""Helpers for sandfill's tests (and sites testing their own deployment)."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandfill.slurm import sacct, sbatch, scancel, scontrol, sdiag, sinfo, squeue
from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import Result


def sleep_script(seconds: int) -> str:
    """A batch script that sleeps (a "rock" or a stand-in job)."""
    return f"#!/bin/sh\nsleep {int(seconds)}\n"


class TestSlurm(SlurmClient):
    """A :class:`SlurmClient` with the blocking calls tests and benchmarks make from
    outside an event loop (submit, cancel, a user's jobs, a node's state and resume, the
    controller's RPC counters), each through the client's :class:`Runner`."""

    __test__ = False  # not a pytest class

    def submit_sync(self, script: str, args: Sequence[str] = ()) -> str:
        """Submit ``script`` with sbatch ``args``; its job id."""
        return sbatch.parse_job_id(self.runner.check(sbatch.submit_argv(args), input=script))

    def cancel_sync(self, job_ids: Iterable[str], *, check: bool = False) -> None:
        """Cancel ``job_ids``; a job that already left is not an error. With ``check``, a
        failing ``scancel`` raises :class:`SlurmCommandError`."""
        ids = list(job_ids)
        if ids:
            self._run(scancel.cancel_argv(ids), check)

    def cancel_user_sync(self, user: str, *, check: bool = False) -> None:
        """Cancel every job of ``user`` (best effort unless ``check``)."""
        self._run(scancel.cancel_user_argv(user), check)

    def user_job_ids_sync(self, users: Iterable[str], states: str | None = None, *, check: bool = True) -> list[str]:
        """The ids of ``users``' jobs in ``states`` (``"all"``, ``"PD"``; default: the jobs
        not yet ended). Without ``check``, a failing ``squeue`` answers no jobs."""
        return squeue.parse_ids(self._run(squeue.ids_argv(states, users), check).stdout)

    def sacct_user_ids_sync(self, user: str, since: str = "now-1days") -> list[str]:
        """The ids of ``user``'s jobs in the accounting since ``since`` (``-S``), ended
        ones included; :class:`SlurmCommandError` when sacct fails."""
        return sacct.parse_ids(self.runner.check(sacct.user_ids_argv(user, since)))

    def resume_node_sync(self, node: str) -> bool:
        """Ask Slurm to return ``node`` to service; whether ``scontrol`` accepted it (it
        refuses while the node's slurmd has not registered, which is not an error here)."""
        return self.runner.run(scontrol.resume_node_argv(node)).returncode == 0

    def node_state_sync(self, node: str) -> str:
        """``node``'s short state (``idle``, ``mix``, ``down*``, …); "" when sinfo fails or
        does not know the node."""
        res = self.runner.run(sinfo.nodes_argv(node=node))
        rows = sinfo.parse_sinfo_nodes(res.stdout) if res.returncode == 0 else []
        return rows[0]["state"] if rows else ""

    def idle_cpus_sync(self) -> dict[str, int]:
        """Node name → idle CPUs right now (``sinfo``; a node in several partitions once)."""
        return {r["node"]: r["idle"] for r in sinfo.parse_sinfo_nodes(self.runner.check(sinfo.nodes_argv()))}

    def sdiag_rpcs_sync(self) -> dict[str, int]:
        """The controller's RPC counters (``sdiag``) by message type."""
        return sdiag.parse_sdiag_rpcs(self.runner.check(sdiag.rpcs_argv()))

    def _run(self, argv: Sequence[str], check: bool) -> Result:
        res = self.runner.run(argv)
        return res.checked() if check else res


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
    """dask.config for sandfill's Dask side in tests and benchmarks: the given Slurm, TLS
    material and worker logs under ``root``. Where the scheduler listens is the cluster's own
    choice, as on a site (on the single-host devcluster: loopback, because NodeAddr is)."""
    return {
        "jobqueue.sandfill.slurm-conf": str(slurm_conf),
        "jobqueue.sandfill.scheduler-options": {"dashboard_address": "127.0.0.1:0"},
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


def exit_on_sigterm() -> None:
    """Turn SIGTERM into :class:`SystemExit` (status 143), so the ``finally`` blocks of a
    benchmark or a helper process stop what it started, as they do on Ctrl-C."""

    def _exit(signum: int, _frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


QUEUE_RPCS = ("REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE", "REQUEST_JOB_USER_INFO")


def queue_rpcs(counts: dict[str, int]) -> int:
    """How many of ``counts`` (from ``sdiag``) are queue queries: one squeue is one of these."""
    return sum(counts.get(k, 0) for k in QUEUE_RPCS)
