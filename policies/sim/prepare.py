"""The simulator's per-job table: each job's tier, allocation, QOS and static priority.

Built once before a replay by :func:`prepare_jobs`, in three steps that mirror what Slurm
does at submission:

* tier mapping (:class:`TierMapper`): with ``use_trace_partitions`` a job whose trace
  partition names a tier (or its partition) goes there; otherwise the tier with the shortest
  ``max_walltime`` that admits its requested time and size, among tiers that are neither the
  ``notebooks`` tier nor preemptable; a job that asked for no time goes to the default tier
  and gets its ``default_walltime`` (else ``max_walltime``). Requests no tier admits are
  rejected;
* QOS caps (:func:`qos_table`): one entry per distinct QOS, with its per-user caps when
  accounting is on;
* priority normalisation (:class:`PriorityNorm`): the time-invariant part of Slurm's
  multifactor priority (job size, partition, QOS) and the age rate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandfill.policies.document.model import Policy, Tier
from sandfill.policies.sim.workload import Job, Workload

if TYPE_CHECKING:
    from sandfill.policies.sim.simulator import SimConfig, SimResult

QosCaps = tuple[int | None, int | None]  # (max jobs per user, max CPUs per user)


def admits(t: Tier, limit: int | None, nodes: int, cpus: int) -> bool:
    """Whether tier ``t`` takes a job of ``limit`` seconds (None: not checked) and size."""
    if limit is not None and limit > t.max_walltime.seconds:
        return False
    if t.max_nodes is not None and nodes > t.max_nodes:
        return False
    return t.max_cpus_per_job is None or cpus <= t.max_cpus_per_job


class TierMapper:
    """Which tier a job goes to (index into ``policy.tiers``), or None when none admits it."""

    def __init__(self, policy: Policy, use_trace_partitions: bool) -> None:
        tiers = list(policy.tiers)
        notebook = dict(policy.roles).get("notebooks")
        # jobs reach the notebooks tier, preemptable tiers and tiers with node sets by name only
        auto = [t for t in tiers if not t.preemptable and t.name != notebook and t.nodes is None] or list(tiers)
        auto.sort(key=lambda t: (t.max_walltime.seconds, -t.priority_tier))
        self.index = {t.name: i for i, t in enumerate(tiers)}
        self.by_name: dict[str, int] = {}
        for i, t in enumerate(tiers):
            self.by_name.setdefault(t.name, i)
            self.by_name.setdefault(t.partition, i)
        self.tiers = tiers
        self.auto = auto
        self.default = self.index[policy.default_tier.name]
        self.use_trace_partitions = use_trace_partitions

    def tier_of(self, job: Job, nodes: int) -> int | None:
        return self.place(job, nodes)[0]

    def place(self, job: Job, nodes: int) -> tuple[int | None, str]:
        """The job's tier, or None and why no tier takes it (see :func:`rejection_reasons`)."""
        if self.use_trace_partitions and job.partition in self.by_name:
            tier_i = self.by_name[job.partition]
            where, note = f"their trace partition's tier '{self.tiers[tier_i].name}'", ""
        elif job.time_limit is None:
            tier_i = self.default
            where = f"the default tier '{self.tiers[tier_i].name}'"
            note = ", where jobs that ask no time go"
        else:
            tier_i = next((self.index[t.name] for t in self.auto
                           if admits(t, job.time_limit, nodes, job.cpus)), None)
            if tier_i is None:
                return None, _excess(self.auto, job.time_limit, nodes, job.cpus, "any tier")
        if not admits(self.tiers[tier_i], None, nodes, job.cpus):
            return None, _excess([self.tiers[tier_i]], None, nodes, job.cpus, where) + note
        return tier_i, ""

    def limit(self, job: Job, tier_i: int) -> int:
        """The time limit the job runs with in its tier (requested, else the tier default,
        at most the tier's ``max_walltime``)."""
        tier = self.tiers[tier_i]
        limit = job.time_limit
        if limit is None:
            limit = (tier.default_walltime or tier.max_walltime).seconds
        return min(limit, tier.max_walltime.seconds)


def _excess(tiers: Sequence[Tier], limit: int | None, nodes: int, cpus: int, where: str) -> str:
    """Why none of ``tiers`` admits a job: the first of nodes, CPUs, time it asks more of
    than the most any of them allows."""
    most_nodes, most_cpus = _most(tiers)
    longest = max(t.max_walltime for t in tiers)
    if most_nodes is not None and nodes > most_nodes:
        return f"ask more nodes than {where} allows (max_nodes {most_nodes})"
    if most_cpus is not None and cpus > most_cpus:
        return f"ask more CPUs than {where} allows (max_cpus_per_job {most_cpus})"
    if limit is not None and limit > longest.seconds:
        return f"ask more time than {where} allows (max_walltime {longest})"
    return "fit no single tier: no tier admits their time and size together"


def largest_job(policy: Policy) -> tuple[int | None, int | None]:
    """The most nodes and CPUs any tier admits for one job (None: no cap)."""
    return _most(policy.tiers)


def _most(tiers: Sequence[Tier]) -> tuple[int | None, int | None]:
    nodes = [t.max_nodes for t in tiers]
    cpus = [t.max_cpus_per_job for t in tiers]
    return (None if None in nodes else max(n or 0 for n in nodes),
            None if None in cpus else max(c or 0 for c in cpus))


def rejection_reasons(result: SimResult) -> Counter[str]:
    """Why each of ``result.rejected`` was rejected, counted per reason (the reasons
    :meth:`TierMapper.place` gives, and the machine's size)."""
    cfg = result.config
    mapper = TierMapper(result.policy, cfg.use_trace_partitions)
    unit = "nodes" if cfg.alloc == "node" else "CPUs"
    reasons: Counter[str] = Counter()
    for idx in result.rejected:
        job = result.workload.jobs[idx]
        nodes = max(job.nodes or 0, math.ceil(job.cpus / cfg.cpus_per_node))
        tier_i, why = mapper.place(job, nodes)
        tier = result.policy.tiers[tier_i] if tier_i is not None else None
        if tier is not None and tier.nodes is not None and result.job_units[idx] <= result.capacity:
            why = f"are larger than the node set of tier '{tier.name}' ({tier.nodes.describe()})"
        reasons[why or f"are larger than the machine ({result.capacity} {unit})"] += 1
    return reasons


def qos_table(policy: Policy, accounting: bool) -> tuple[list[int], list[QosCaps | None]]:
    """Each tier's QOS index, and each QOS's caps (None: uncapped, or no accounting)."""
    names: list[str] = []
    of_tier: list[int] = []
    caps: list[QosCaps | None] = []
    for t in policy.tiers:
        if t.qos.name not in names:
            names.append(t.qos.name)
            c = (t.qos.max_jobs_per_user, t.qos.max_cpus_per_user)
            caps.append(c if accounting and t.qos.has_caps else None)
        of_tier.append(names.index(t.qos.name))
    return of_tier, caps


class PriorityNorm:
    """Slurm's multifactor priority, normalised as Slurm normalises it: age =
    min(wait, PriorityMaxAge)/MaxAge; job size = (nodes/total nodes + cpus/total cpus) / 2
    (1 - that with favor_small); partition = PriorityJobFactor / the largest; QOS = QOS
    priority / the largest. Without accounting the age and QOS factors are off."""

    def __init__(self, policy: Policy, config: SimConfig) -> None:
        pr = policy.priority
        tiers = policy.tiers
        self.multi = pr.type == "multifactor"
        self.weights = pr.weights
        self.favor_small = pr.favor_small
        self.accounting = config.accounting
        self.cpu_alloc = config.alloc != "node"
        self.total_nodes = config.nodes
        self.total_cpus = config.nodes * config.cpus_per_node
        self.max_pjf = max(t.priority_job_factor for t in tiers) or 1
        self.max_qp = max(t.qos.priority for t in tiers) or 1
        w = pr.weights
        self.age_rate = w.age / pr.max_age.seconds if self.multi and self.accounting and w.age else 0.0
        self.max_age = pr.max_age.seconds

    def static(self, job: Job, nodes: int, tier: Tier) -> float:
        """The priority of ``job`` in ``tier`` without its age."""
        if not self.multi:
            return 0.0
        w = self.weights
        # Slurm's job size factor (priority/multifactor, favouring large jobs): the mean of
        # min nodes / nodes and CPUs / CPUs; a CPU request (-n N) has min nodes 1 unless it
        # names nodes. Favouring small jobs is 1 - that.
        min_nodes = (job.nodes or 1) if self.cpu_alloc else nodes
        size = (min_nodes / self.total_nodes + job.cpus / self.total_cpus) / 2
        if self.favor_small:
            size = 1.0 - size
        static = w.job_size * min(1.0, size)
        static += w.partition * tier.priority_job_factor / self.max_pjf
        if self.accounting:
            static += w.qos * tier.qos.priority / self.max_qp
        return static


@dataclass
class JobTable:
    """Per-job columns the schedulers read (indexed like ``jobs``)."""

    jobs: list[Job] = field(default_factory=list)
    job_tier: list[int] = field(default_factory=list)
    job_units: list[int] = field(default_factory=list)
    job_cpus: list[int] = field(default_factory=list)
    job_limit: list[int] = field(default_factory=list)
    job_time_min: list[int] = field(default_factory=list)
    job_user: list[str] = field(default_factory=list)
    job_qos: list[int] = field(default_factory=list)
    job_ptier: list[int] = field(default_factory=list)
    job_preemptable: list[bool] = field(default_factory=list)
    job_static: list[float] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)


def prepare_jobs(policy: Policy, workload: Workload, config: SimConfig, capacity: int,
                 qos_of_tier: list[int], any_preemptable: bool,
                 prio: PriorityNorm, tier_units: Sequence[int] | None = None) -> JobTable:
    """The job table of ``workload`` (see the module docstring); a rejected job is kept in
    the default tier with its ``max_walltime`` so the columns stay aligned. ``tier_units``:
    each tier's units when tiers have node sets (a job larger than its tier's set is
    rejected as one larger than the machine)."""
    cpn = config.cpus_per_node
    mapper = TierMapper(policy, config.use_trace_partitions)
    tab = JobTable()
    for job in workload.jobs:
        idx = len(tab.jobs)
        nodes = max(job.nodes or 0, math.ceil(job.cpus / cpn))
        units = nodes if config.alloc == "node" else job.cpus
        tier_i = mapper.tier_of(job, nodes)
        if tier_i is None or units > (tier_units[tier_i] if tier_units else capacity):
            tab.rejected.append(idx)
            tier_i = mapper.default
            limit = mapper.tiers[tier_i].max_walltime.seconds
        else:
            limit = mapper.limit(job, tier_i)
        tier = mapper.tiers[tier_i]
        tab.jobs.append(job)
        tab.job_tier.append(tier_i)
        tab.job_units.append(units)
        tab.job_cpus.append(nodes * cpn if config.alloc == "node" else job.cpus)
        tab.job_limit.append(max(1, limit))
        tmin = job.time_min
        tab.job_time_min.append(min(tmin, limit) if tmin and tmin < limit else 0)
        tab.job_user.append(job.user)
        tab.job_qos.append(qos_of_tier[tier_i])
        tab.job_ptier.append(tier.priority_tier)
        tab.job_preemptable.append(tier.preemptable and any_preemptable)
        tab.job_static.append(prio.static(job, nodes, tier))
    return tab
