"""A typed, async client for the Slurm commands sandfill needs."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence

from sandfill.slurm.commands import Result, SlurmCommandError, arun, command_env, run
from sandfill.slurm.sacct import SACCT_FIELDS, parse_sacct_final
from sandfill.slurm.sbatch import TestOnlyAnswer, parse_test_only
from sandfill.slurm.sdiag import parse_sdiag_rpcs
from sandfill.slurm.sinfo import parse_sinfo_nodes
from sandfill.slurm.squeue import SQUEUE_FORMAT, parse_squeue
from sandfill.slurm.states import JobStatus

_JOB_ID = re.compile(r"^\d+(_\d+)?$")


def check_job_id(job_id: str) -> str:
    job_id = str(job_id).strip()
    if not _JOB_ID.match(job_id):
        raise ValueError(f"not a Slurm job id: {job_id!r}")
    return job_id


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
        self.slurm_conf = str(slurm_conf) if slurm_conf else os.environ.get("SLURM_CONF")
        self.prefix = list(prefix)
        self.timeout = timeout
        self._env = command_env(self.slurm_conf, env)

    @property
    def env(self) -> dict[str, str]:
        return dict(self._env)

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]

    # ---- submit / cancel / probe ----------------------------------------------------------
    async def submit(self, script: str, args: Sequence[str] = ()) -> str:
        """Submit a batch script given as text; returns the job id."""
        res = await arun(self._argv(["sbatch", "--parsable", *args]), env=self._env, input=script, timeout=self.timeout)
        job_id = res.stdout.strip().split(";")[0]
        return check_job_id(job_id)

    def submit_sync(self, script: str, args: Sequence[str] = ()) -> str:
        res = run(self._argv(["sbatch", "--parsable", *args]), env=self._env, input=script, timeout=self.timeout)
        return check_job_id(res.stdout.strip().split(";")[0])

    async def cancel(self, job_ids: Iterable[str], signal: str | None = None) -> None:
        ids = [check_job_id(j) for j in job_ids]
        if not ids:
            return
        argv = ["scancel", *ids] if signal is None else ["scancel", f"--signal={signal}", *ids]
        await arun(self._argv(argv), env=self._env, timeout=self.timeout)

    async def test_only(self, script: str, args: Sequence[str] = ()) -> TestOnlyAnswer | None:
        """``sbatch --test-only``: when and where the job would start now (None if Slurm
        gives no start, e.g. the request can never be satisfied)."""
        res = await arun(
            self._argv(["sbatch", "--test-only", *args]), env=self._env, input=script, timeout=self.timeout, check=False
        )
        ans = parse_test_only(res.stderr + res.stdout)
        if ans is None and res.returncode != 0:
            raise SlurmCommandError(res.argv, res.returncode, res.stdout, res.stderr)
        return ans

    # ---- queries ------------------------------------------------------------------------
    async def squeue(self, job_ids: Iterable[str] | None = None, extra: Sequence[str] = ()) -> dict[str, JobStatus]:
        """One ``squeue`` for ``job_ids`` (all jobs when None). Raises SlurmCommandError when
        the controller cannot be asked; a job the controller no longer knows is absent."""
        return _squeue_result(await arun(self._argv(_squeue_argv(job_ids, extra)), env=self._env, timeout=self.timeout, check=False))

    def squeue_sync(self, job_ids: Iterable[str] | None = None, extra: Sequence[str] = ()) -> dict[str, JobStatus]:
        return _squeue_result(run(self._argv(_squeue_argv(job_ids, extra)), env=self._env, timeout=self.timeout, check=False))

    def sacct_final_sync(self, job_ids: Iterable[str]) -> dict[str, JobStatus]:
        ids = [check_job_id(j) for j in job_ids]
        if not ids:
            return {}
        res = run(
            self._argv(["sacct", "-X", "-n", "-P", "-j", ",".join(ids), "-o", ",".join(SACCT_FIELDS)]),
            env=self._env,
            timeout=self.timeout,
        )
        return parse_sacct_final(res.stdout)

    async def sinfo_nodes(self, partition: str | None = None) -> list[dict[str, str | int]]:
        argv = ["sinfo", "-h", "-N", "-o", "%N|%P|%t|%C|%m"]
        if partition:
            argv += ["-p", partition]
        res = await arun(self._argv(argv), env=self._env, timeout=self.timeout)
        return parse_sinfo_nodes(res.stdout)

    async def sdiag_rpcs(self) -> dict[str, int]:
        res = await arun(self._argv(["sdiag"]), env=self._env, timeout=self.timeout)
        return parse_sdiag_rpcs(res.stdout)

    def sdiag_rpcs_sync(self) -> dict[str, int]:
        return parse_sdiag_rpcs(run(self._argv(["sdiag"]), env=self._env, timeout=self.timeout).stdout)

    async def command(self, argv: Sequence[str], *, input: str | None = None, check: bool = True) -> Result:
        """Any other Slurm command, through the same prefix/env/timeout."""
        return await arun(self._argv(argv), env=self._env, input=input, timeout=self.timeout, check=check)


def _squeue_argv(job_ids: Iterable[str] | None, extra: Sequence[str]) -> list[str]:
    argv = ["squeue", "-h", "-o", SQUEUE_FORMAT]
    if job_ids is not None:
        ids = sorted({check_job_id(j) for j in job_ids}, key=lambda s: (len(s), s))
        argv += ["-t", "all", "-j", ",".join(ids)]
    return [*argv, *extra]


def _squeue_result(res: Result) -> dict[str, JobStatus]:
    if res.returncode != 0:
        # squeue -j with only ids the controller has forgotten: an answer, not a failure
        if "Invalid job id specified" in res.stderr:
            return {}
        raise SlurmCommandError(res.argv, res.returncode, res.stdout, res.stderr)
    return parse_squeue(res.stdout, observed=time.time())
