"""Workers that give way: on SIGTERM, a worker retires gracefully instead of dying.

Slurm preempts a job of a partition with ``GraceTime`` by sending SIGCONT and SIGTERM to
the job's processes, and SIGKILL ``GraceTime`` later (slurm.conf(5)); a walltime end and
``scancel`` send SIGTERM too. ``dask worker`` on its own answers SIGTERM by closing its nanny,
which stops the worker process at once: the results held in that worker's memory are lost and
recomputed elsewhere, and a worker process that gets the signal itself simply dies.

Given to ``dask worker`` as ``--preload`` and ``--preload-nanny`` (the worker job's command
line, :mod:`sandfill.dask.job`), this module answers SIGTERM instead:

* in the **worker process**: :meth:`distributed.Worker.close_gracefully` -- the scheduler's
  ``retire_workers`` for this worker, which moves every result it holds to another worker
  and reschedules its tasks, then closes the worker and its nanny. If the scheduler cannot
  be reached (the cluster itself is closing), the worker just closes;
* in the **nanny**: the signal is passed to its worker process (once), and the nanny
  stays up until the worker has retired and closes it. The nanny never stops the worker
  abruptly on SIGTERM.

A second SIGTERM changes nothing; SIGKILL (Slurm's, after the grace time) still ends all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from distributed import Nanny, Worker

from sandfill.slurm.policy_meta import cluster_metadata

log = logging.getLogger("sandfill.dask.preemption")

#: the policy role whose (preemptable) tier takes the workers of ``preemptable=True`` clusters
PREEMPTABLE_ROLE = "dask-preemptable"

#: the ``dask worker`` arguments that load this module in the nanny and the worker process
WORKER_ARGS = ["--preload", "sandfill.dask.preemption", "--preload-nanny", "sandfill.dask.preemption"]
#: the reason a worker gives the scheduler when it retires on SIGTERM
REASON = "sandfill-sigterm"


async def give_way(worker: Worker) -> None:
    """Retire ``worker`` through the scheduler (its data moves first), or close it when the
    scheduler does not answer."""
    log.info("SIGTERM: worker %s retires gracefully (its data moves to other workers)", worker.address)
    try:
        await worker.close_gracefully(restart=False, reason=REASON)
    except Exception as exc:  # no scheduler to retire through: close, as dask would
        log.warning("worker %s could not retire through the scheduler (%s): closing", worker.address, exc)
        with contextlib.suppress(Exception):
            await worker.close(nanny=True, reason=REASON)


def _pass_on(nanny: Nanny) -> None:
    """The nanny's answer: pass SIGTERM on to its worker process, which retires itself."""
    pid = nanny.pid
    log.info("SIGTERM: nanny %s passes it on to its worker process %s", nanny.address_safe, pid)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def dask_setup(server: Any) -> None:
    """Preload entry point: install the SIGTERM answer of a worker or a nanny (in the
    server's event loop, which runs in its process's main thread)."""
    loop = asyncio.get_running_loop()
    done: list[bool] = []

    def on_sigterm() -> None:
        if done:  # one answer per process: Slurm may signal twice (SIGTERM, then the nanny's)
            return
        done.append(True)
        if isinstance(server, Nanny):
            _pass_on(server)
        else:
            asyncio.ensure_future(give_way(server))

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)


def dask_teardown(server: Any) -> None:
    """Preload exit point: SIGTERM's own handling back (the server is closing anyway)."""
    with contextlib.suppress(Exception):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)


def preemptable_flag(value: Any) -> bool:
    """``jobqueue.sandfill.preemptable`` as a bool, or ValueError naming it and the value."""
    if not isinstance(value, bool):
        raise ValueError(f"jobqueue.sandfill.preemptable: must be true or false, not {value!r}")
    return value


def preemptable_partition(slurm_conf: str, queue: str | None) -> str:
    """The partition of the tier the live policy names for preemptable Dask workers (role
    ``dask-preemptable``, such as the default policy's scavenger). ValueError when ``queue``
    is set as well (one of the two says where workers go), or the policy names no such tier
    (workers would silently land on a tier that is never preempted)."""
    if queue:
        raise ValueError(f"preemptable=True places workers on the policy's {PREEMPTABLE_ROLE!r} tier; "
                         f"queue={queue!r} names a partition too: give one of the two")
    meta = cluster_metadata(slurm_conf) or {}
    tier = (meta.get("roles") or {}).get(PREEMPTABLE_ROLE)
    partition = (meta.get("tiers") or {}).get(tier, tier) if isinstance(tier, str) else None
    if not isinstance(partition, str):
        raise ValueError(f"preemptable=True: the cluster's policy ({slurm_conf}) names no "
                         f"{PREEMPTABLE_ROLE!r} role (a preemptable tier, as the default policy's "
                         "scavenger), so there is no tier whose workers give way")
    return partition
