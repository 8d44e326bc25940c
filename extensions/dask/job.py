"""One worker job: its walltime fitted to the schedule at submit time, and a prologue that
asks the queue for the job's real end time so that every worker process retires gracefully
``retire-margin`` before Slurm would kill it."""

from __future__ import annotations

import logging
import re
import shlex
from typing import Any

from dask_jobqueue.slurm import SLURMJob
from distributed.deploy.spec import ProcessInterface

import dask
from sandfill.dask.config import CONFIG_NAME, memory_mib, seconds, setting
from sandfill.dask.planner import GapPlanner, Plan
from sandfill.dask.preemption import WORKER_ARGS as GIVE_WAY_ARGS
from sandfill.slurm import SlurmClient
from sandfill.units import format_duration, format_memory

log = logging.getLogger("sandfill.dask.job")

# The workers' lifetime, without asking Slurm anything: the walltime this script asks for,
# less retire-margin (the script starts once the job has, so it cannot end sooner than that
# allows, unless Slurm gave it less under --time-min). The cluster's keeper, which reads every
# worker job's real end from its one shared poller, retires the workers retire-margin before
# that end in every case; the lifetime is the backstop if the cluster's process is gone.
LIFETIME = "@SANDFILL_LIFETIME@"
LIFETIME_PROLOGUE = f"""\
export SANDFILL_LIFETIME={LIFETIME}
echo "sandfill: job $SLURM_JOB_ID: its workers retire after $SANDFILL_LIFETIME s at the latest"
"""
# Slurm's SIGTERM (preemption with GraceTime, the walltime, scancel) reaches every process of
# the job. The workers answer it by retiring gracefully (sandfill.dask.preemption); this shell
# must outlive them, since the job ends, and Slurm kills what is left, once the shell exits.
# With a trap bash runs it only after the worker command returns.
TERM_PROLOGUE = """\
trap 'echo "sandfill: job $SLURM_JOB_ID: SIGTERM: its workers retire gracefully"' TERM
"""


def site_prologue(config_name: str = CONFIG_NAME) -> list[str]:
    """The site's prologue lines (module load, conda activate…), run first in every worker job:
    the hub puts them in the server job's environment as ``jobqueue.sandfill.site-prologue``
    (``sandfill.hub.submit.SITE_PROLOGUE_ENV``), so each kernel's dask reads them."""
    lines = dask.config.get(f"jobqueue.{config_name}.site-prologue", None) or []
    return [lines] if isinstance(lines, str) else [str(line) for line in lines]


class BackfillSLURMJob(SLURMJob):
    config_name = CONFIG_NAME

    def __init__(
        self,
        scheduler: str | None = None,
        name: str | None = None,
        *,
        client: SlurmClient | None = None,
        planner: GapPlanner | None = None,
        qos: str | None = None,
        min_walltime: Any = None,
        max_walltime: Any = None,
        retire_margin: Any = None,
        on_submit: Any = None, canceller: Any = None,  # the keeper's hooks
        plan: Plan | None = None,
        config_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        cfg = config_name or CONFIG_NAME
        self._read_walltimes(min_walltime, max_walltime, retire_margin, cfg)
        self.walltime_s = int(self.min_walltime)  # what the script asks for (set by start())
        extra_args = list(kwargs.pop("worker_extra_args", None) or setting("worker-extra-args", None, cfg) or [])
        extra_args += ["--lifetime", "${SANDFILL_LIFETIME}s", "--lifetime-stagger", "0s", *GIVE_WAY_ARGS]
        user_prologue = list(kwargs.pop("job_script_prologue", None) or setting("job-script-prologue", None, cfg) or [])
        # memory as Slurm reads it ("4G" = 4096 MiB), given to dask-jobqueue in exact MiB and
        # to Slurm as the same number (dask would read "4G" as 4e9 bytes and round it up)
        self.memory_mib = memory_mib("memory", kwargs.pop("memory", None), cfg)
        kwargs["memory"] = f"{self.memory_mib}MiB"
        kwargs["job_mem"] = kwargs.get("job_mem") or setting("job-mem", None, cfg) or format_memory(self.memory_mib)
        super().__init__(
            scheduler=scheduler,
            name=name,
            walltime=format_duration(self.min_walltime),
            worker_extra_args=extra_args,
            job_script_prologue=[*site_prologue(cfg), *user_prologue, LIFETIME_PROLOGUE, TERM_PROLOGUE],
            config_name=cfg,
            **kwargs,
        )
        # the cluster replaces lost workers itself; a job Slurm requeued would come back with
        # a stale walltime plan under the same id
        self.job_header += "\n#SBATCH --no-requeue"
        self.qos = qos if qos is not None else setting("qos", None, cfg)
        if self.qos:
            self.job_header += f"\n#SBATCH --qos={self.qos}"
        self.partition = kwargs.get("queue") or setting("queue", None, cfg)
        self.client = client or SlurmClient(setting("slurm-conf", None, cfg))
        self.planner = planner
        self.plan: Plan | None = plan
        self.on_submit = on_submit
        self.canceller = canceller  # async (job_id) -> bool, retries a failed scancel (the keeper)

    def _read_walltimes(self, min_walltime: Any, max_walltime: Any, retire_margin: Any, cfg: str) -> None:
        """min-walltime, max-walltime and retire-margin in seconds, or ValueError naming them."""
        self.min_walltime = seconds("min-walltime", min_walltime, cfg)
        self.max_walltime = seconds("max-walltime", max_walltime, cfg)
        if self.min_walltime <= 0 or self.max_walltime < self.min_walltime:
            raise ValueError(
                f"need 0 < min-walltime <= max-walltime, got {self.min_walltime:.0f} s and {self.max_walltime:.0f} s"
            )
        self.retire_margin = seconds("retire-margin", retire_margin, cfg)
        if not 0 <= self.retire_margin < self.min_walltime - 10:
            raise ValueError(
                f"retire-margin ({self.retire_margin:.0f} s) must leave at least 10 s of the "
                f"min-walltime ({self.min_walltime:.0f} s)"
            )

    def job_script(self) -> str:
        """dask-jobqueue's script, with the workers' lifetime for this job's walltime."""
        lifetime = max(10, self.walltime_s - int(self.retire_margin))
        return super().job_script().replace(LIFETIME, str(lifetime))

    def _set_walltime(self, walltime: int, time_min: int | None) -> None:
        self.walltime_s = walltime
        lines = [ln for ln in self.job_header.splitlines() if not re.match(r"#SBATCH (-t|--time)", ln)]
        lines.append(f"#SBATCH -t {format_duration(walltime)}")
        if time_min:
            lines.append(f"#SBATCH --time-min={format_duration(time_min)}")
        self.job_header = "\n".join(lines)

    async def start(self) -> None:
        if self.plan is None and self.planner is not None:
            self.plan = await self.planner.pick(**self.shape())
        if self.plan is not None:
            self._set_walltime(self.plan.walltime, self.plan.time_min)
            log.info("worker %s: walltime %s (%s)", self.name, format_duration(self.plan.walltime), self.plan.why)
        else:
            self._set_walltime(int(self.max_walltime), None)
        self.job_id = await self.client.submit(self.job_script())
        if self.on_submit is not None:
            self.on_submit(self)
        await ProcessInterface.start(self)

    async def close(self) -> None:
        if self.job_id and self.canceller is not None:
            await self.canceller(self.job_id)
        elif self.job_id:
            try:
                await self.client.cancel([self.job_id])
            except Exception as exc:
                log.warning("scancel %s failed: %s (it ends at its walltime)", self.job_id, exc)
        await ProcessInterface.close(self)

    def shape(self) -> dict[str, Any]:
        """What the planner needs to know about this job."""
        return {
            "cores": int(self.worker_cores),
            "memory_mb": self.memory_mib,
            "partition": self.partition,
            "qos": self.qos,
            "min_walltime": self.min_walltime,
            "max_walltime": self.max_walltime,
        }

    @property
    def command_line(self) -> list[str]:
        return shlex.split(self._command_template)
