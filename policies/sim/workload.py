"""The workload job record shared by the trace readers and the simulator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Job:
    """One job of a workload, times in seconds.

    ``run_time`` is what the job actually ran (it ends the job in a replay); ``time_limit``
    is what it asked for (it plans the job); ``None`` means not recorded, and the tier's
    default walltime applies, as Slurm applies DefaultTime/MaxTime.
    """

    id: int
    submit: int
    run_time: int
    cpus: int
    user: str
    time_limit: int | None = None
    time_min: int | None = None
    nodes: int | None = None
    partition: str | None = None


@dataclass(frozen=True, slots=True)
class Workload:
    """Jobs (sorted by submit time) plus what the source says about the machine."""

    jobs: tuple[Job, ...]
    nodes: int | None = None
    cpus_per_node: int | None = None
    source: str = ""
    acknowledge: str = ""
    skipped: int = 0
    skip_reasons: tuple[tuple[str, int], ...] = ()  # (why, how many), adding up to skipped

    def __len__(self) -> int:
        return len(self.jobs)

    def head(self, n: int) -> Workload:
        return dataclasses.replace(self, jobs=self.jobs[:n])

    def scaled(self, load: float) -> Workload:
        """Inter-arrival times divided by ``load`` (1.2 → 20 % busier)."""
        if load <= 0:
            raise ValueError("load factor must be positive")
        if load == 1 or not self.jobs:
            return self
        t0 = self.jobs[0].submit
        jobs = tuple(
            Job(j.id, t0 + round((j.submit - t0) / load), j.run_time, j.cpus, j.user,
                j.time_limit, j.time_min, j.nodes, j.partition)
            for j in self.jobs
        )
        return dataclasses.replace(self, jobs=jobs)
