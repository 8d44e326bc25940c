"""A typed, async client for the Slurm questions sandfill asks.

:class:`SlurmClient` holds one :class:`~sandfill.slurm.commands.Runner` (cluster, prefix,
environment, timeout); each method builds its argv with the command's module
(:mod:`.sbatch`, :mod:`.squeue`, …) and returns what that module's parser reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from sandfill.slurm import sacct, sacctmgr, sbatch, scancel, scontrol, sinfo, squeue
from sandfill.slurm.commands import Runner, SlurmCommandError
from sandfill.slurm.sacctmgr import Association
from sandfill.slurm.sbatch import TestOnlyAnswer
from sandfill.slurm.scontrol import Reservation
from sandfill.slurm.sinfo import PartitionInfo, SinfoNode
from sandfill.slurm.states import JobStatus, check_job_id, is_user_name

__all__ = ["SlurmClient", "check_job_id"]


class SlurmClient:
    """Talks to one Slurm cluster (``slurm_conf``; None = the environment's).

    ``prefix`` is prepended to every command (for example ``["sudo", "-E", "-u", user]``)."""

    def __init__(
        self,
        slurm_conf: str | os.PathLike[str] | None = None,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.runner = Runner(slurm_conf, prefix=prefix, env=env, timeout=timeout)

    @property
    def slurm_conf(self) -> str | None:
        return self.runner.slurm_conf

    @property
    def env(self) -> dict[str, str]:
        return dict(self.runner.env)

    # ---- submit / cancel / probe ----------------------------------------------------------
    async def submit(self, script: str, args: Sequence[str] = ()) -> str:
        """Submit a batch script given as text; returns the job id."""
        return sbatch.parse_job_id(await self.runner.acheck(sbatch.submit_argv(args), input=script))

    async def cancel(self, job_ids: Iterable[str], signal: str | None = None) -> None:
        """Cancel ``job_ids`` (or send them ``signal``); nothing to do for none."""
        ids = list(job_ids)
        if ids:
            await self.runner.acheck(scancel.cancel_argv(ids, signal))

    async def test_only(self, script: str, args: Sequence[str] = ()) -> TestOnlyAnswer | None:
        """``sbatch --test-only``: when and where the job would start now (None if Slurm
        gives no start, e.g. the request can never be satisfied)."""
        res = await self.runner.arun(sbatch.test_only_argv(args), input=script)
        ans = sbatch.parse_test_only(res.stderr + res.stdout)
        if ans is None and res.returncode != 0:
            raise SlurmCommandError(res.argv, res.returncode, res.stdout, res.stderr)
        return ans

    # ---- the queue ------------------------------------------------------------------------
    async def squeue(self, job_ids: Iterable[str] | None = None) -> dict[str, JobStatus]:
        """One ``squeue`` for ``job_ids`` (all jobs when None). Raises SlurmCommandError when
        the controller cannot be asked; a job the controller no longer knows is absent."""
        return squeue.parse_status(await self.runner.arun(squeue.status_argv(job_ids)))

    def squeue_sync(self, job_ids: Iterable[str] | None = None) -> dict[str, JobStatus]:
        """:meth:`squeue` for threads (the queue poller)."""
        return squeue.parse_status(self.runner.run(squeue.status_argv(job_ids)))

    def sacct_final_sync(self, job_ids: Iterable[str]) -> dict[str, JobStatus]:
        """Final states of ended jobs from accounting (for the queue poller's thread)."""
        ids = list(job_ids)
        if not ids:
            return {}
        return sacct.parse_sacct_final(self.runner.check(sacct.final_argv(ids)))

    async def pending_positions(self) -> dict[str, tuple[int, int]]:
        """Job id → (position, pending jobs) in its partition, for every pending job."""
        return squeue.parse_pending_positions(await self.runner.acheck(squeue.pending_argv()))

    async def planned_starts(self) -> dict[str, float]:
        """Node → the earliest planned start of a pending job on it (``squeue --start``'s plan)."""
        return squeue.parse_planned_starts(await self.runner.acheck(squeue.planned_starts_argv()))

    # ---- nodes, reservations, partitions and associations --------------------------------
    async def nodes(self, partition: str | None = None) -> list[SinfoNode]:
        """Every node (of ``partition``), once per partition, with its CPUs and memory."""
        return sinfo.parse_sinfo_nodes(await self.runner.acheck(sinfo.nodes_argv(partition)))

    async def reservations(self) -> list[Reservation]:
        """Every advance reservation (SlurmCommandError when the controller cannot say)."""
        return scontrol.parse_reservations(await self.runner.acheck(scontrol.show_reservations_argv()))

    async def partitions(self) -> dict[str, PartitionInfo]:
        """Every partition with its limits and live CPU counts, by name."""
        return sinfo.parse_partitions(await self.runner.acheck(sinfo.partitions_argv()))

    async def associations(self, user: str) -> list[Association]:
        """``user``'s associations (none for a name that is not a plain user name)."""
        if not is_user_name(user):
            return []
        return sacctmgr.parse_associations(await self.runner.acheck(sacctmgr.associations_argv(user)))
