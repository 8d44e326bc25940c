"""The one data model of an admin policy (frozen dataclasses).

Only :mod:`sandfill.policies.document.load` builds these from YAML; the renderer and the simulator
read them. Field names follow the YAML keys (``policies/default.yaml`` documents each one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sandfill.units import Duration

PreemptMode = Literal["off", "requeue", "cancel"]
PreemptType = Literal["none", "partition_prio", "qos"]
PriorityType = Literal["basic", "multifactor"]
SchedulerType = Literal["backfill", "builtin"]

PREEMPT_MODES: tuple[str, ...] = ("off", "requeue", "cancel")
PREEMPT_TYPES: tuple[str, ...] = ("none", "partition_prio", "qos")
PRIORITY_TYPES: tuple[str, ...] = ("basic", "multifactor")
SCHEDULER_TYPES: tuple[str, ...] = ("backfill", "builtin")


@dataclass(frozen=True, slots=True)
class MachineNode:
    """One node of a known machine: its name, CPUs and features (``scontrol show nodes``)."""

    name: str
    cpus: int = 0
    features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterShape:
    """Size of the machine a policy is meant for (used for consistency checks); ``machine``
    lists its nodes when they are known (node sets are then checked against them)."""

    nodes: int
    cpus_per_node: int
    machine: tuple[MachineNode, ...] = ()

    @property
    def cpus(self) -> int:
        return self.nodes * self.cpus_per_node


@dataclass(frozen=True, slots=True)
class Qos:
    """Per-tier QOS: priority and per-user caps (need slurmdbd to take effect)."""

    name: str
    priority: int = 0
    max_jobs_per_user: int | None = None
    max_cpus_per_user: int | None = None

    @property
    def has_caps(self) -> bool:
        return self.max_jobs_per_user is not None or self.max_cpus_per_user is not None


@dataclass(frozen=True, slots=True)
class NodeSet:
    """The nodes of a tier's partition: those carrying every one of ``features``, or the
    Slurm host list ``list_`` (``gpu1``, ``cpu[1-2],bigmem1``). Exactly one is set."""

    features: tuple[str, ...] | None = None
    list_: str | None = None

    def describe(self) -> str:
        if self.features is not None:
            return "features " + "&".join(self.features)
        return f"nodes {self.list_}"


@dataclass(frozen=True, slots=True)
class Tier:
    """One service tier: a Slurm partition plus its QOS."""

    name: str
    partition: str
    max_walltime: Duration
    qos: Qos
    default_walltime: Duration | None = None
    max_nodes: int | None = None
    max_cpus_per_job: int | None = None
    priority_tier: int = 1
    priority_job_factor: int = 1
    preempt_mode: PreemptMode = "off"
    # partition GraceTime: how long a preempted job has between SIGTERM and SIGKILL (None: 0)
    grace_time: Duration | None = None
    nodes: NodeSet | None = None  # the partition's nodes (None: every node of the cluster)

    @property
    def preemptable(self) -> bool:
        return self.preempt_mode != "off"


@dataclass(frozen=True, slots=True)
class PriorityWeights:
    age: int = 0
    job_size: int = 0
    partition: int = 0
    qos: int = 0
    fairshare: int = 0


@dataclass(frozen=True, slots=True)
class PrioritySettings:
    type: PriorityType = "basic"
    weights: PriorityWeights = field(default_factory=PriorityWeights)
    max_age: Duration = Duration(7 * 86400)
    favor_small: bool = False


@dataclass(frozen=True, slots=True)
class BackfillSettings:
    """Slurm's ``SchedulerParameters=bf_*`` knobs (defaults are Slurm 22.05's)."""

    interval: int = 30  # bf_interval, seconds
    window: Duration = Duration(1440 * 60)  # bf_window (rendered in minutes)
    resolution: int = 60  # bf_resolution, seconds
    max_job_test: int = 500  # bf_max_job_test
    max_job_user: int = 0  # bf_max_job_user (0 = no limit)
    max_job_start: int = 0  # bf_max_job_start (0 = no limit)
    continue_: bool = False  # bf_continue


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    type: SchedulerType = "backfill"
    backfill: BackfillSettings = field(default_factory=BackfillSettings)


@dataclass(frozen=True, slots=True)
class PreemptionSettings:
    type: PreemptType = "none"
    mode: PreemptMode = "off"  # cluster-wide PreemptMode (derived when left out)


@dataclass(frozen=True, slots=True)
class Policy:
    """A whole admin policy. ``tiers`` keeps file order; ``roles`` maps purpose → tier name."""

    tiers: tuple[Tier, ...]
    roles: tuple[tuple[str, str], ...]
    priority: PrioritySettings = field(default_factory=PrioritySettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    preemption: PreemptionSettings = field(default_factory=PreemptionSettings)
    name: str = "policy"

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)

    def role(self, role: str) -> Tier:
        """The tier serving ``role`` (e.g. ``"notebooks"``), falling back to ``default``."""
        roles = dict(self.roles)
        return self.tier(roles.get(role, roles["default"]))

    @property
    def default_tier(self) -> Tier:
        return self.tier(dict(self.roles)["default"])

    @property
    def max_walltime(self) -> Duration:
        return max(t.max_walltime for t in self.tiers)
