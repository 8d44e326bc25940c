"""Workers that give way: preemption seen by the keeper, and SIGTERM answered by retiring.

Slurm 22.05 preempting a job of a partition with ``GraceTime`` moves the job's end up to the
preemption plus the grace time at once, and signals the *batch step* (where a worker job's
``dask worker`` runs) only when that end comes: SIGCONT and SIGTERM, then SIGKILL
``KillWait`` later (seen on the devcluster: the job steps' tasks would be signalled at
once, the batch shell is not). So there are two answers:

* the cluster's keeper sees the moved end in its one shared poller (:func:`preempted`) and
  retires the job's workers at once: their data moves to other workers, their tasks are
  rescheduled, the job ends on its own (Slurm records COMPLETED, the model "preempted") and
  the preemptor starts long before the grace time is up;
* every worker answers SIGTERM (the grace time's end, the walltime, ``scancel``, a keeper
  that is gone) by retiring too, within ``KillWait``. ``dask worker`` on its own answers it
  by closing its nanny, which stops the worker process at once: the results in that worker's
  memory are lost and computed again, and a worker process that gets the signal itself
  simply dies. Given to ``dask worker`` as ``--preload`` and ``--preload-nanny`` (the worker
  job's command line, :mod:`sandfill.dask.job`, whose shell traps TERM so it outlives them),
  this module answers instead:

  - in the **worker process**: :meth:`distributed.Worker.close_gracefully` -- the
    scheduler's ``retire_workers`` for this worker, then closing it and its nanny; if the
    scheduler cannot be reached (the cluster itself is closing), the worker just closes;
  - in the **nanny**: the signal is passed to its worker process (once), and the nanny stays
    up until the worker has retired and closes it.

A second SIGTERM changes nothing; SIGKILL still ends all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from distributed import Nanny, Worker

from sandfill.slurm.jobview import ENDED_WHY
from sandfill.slurm.policy_meta import cluster_metadata
from sandfill.slurm.states import JobStatus

log = logging.getLogger("sandfill.dask.preemption")

#: the policy role whose (preemptable) tier takes the workers of ``preemptable=True`` clusters
PREEMPTABLE_ROLE = "dask-preemptable"
#: why a worker job ended when Slurm preempted it, in the one job view's words
PREEMPTED = ENDED_WHY["PREEMPTED"]
#: how far a running job's end may fall short of its start plus time limit (rounding)
_SLACK = 2.0


def preempted(st: JobStatus) -> bool:
    """Has Slurm selected the running job ``st`` for preemption? With a GraceTime it then
    moves the job's end up to the preemption plus the grace time, so the end falls short of
    the start plus the time limit (which a job started under ``--time-min`` keeps: Slurm
    sets its limit, and its end with it). The cluster's shared poller sees this at once."""
    if st.state != "RUNNING" or None in (st.start_time, st.end_time) or not st.time_limit:
        return False
    return st.end_time < st.start_time + st.time_limit - _SLACK  # type: ignore[operator]

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
