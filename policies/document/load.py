"""Load and validate policy files into the frozen :class:`~sandfill.policies.document.model.Policy`.

This is the only module that reads policy YAML. The file's shape is a set of pydantic models
(:class:`PolicyDoc` and its sections, on :mod:`sandfill.schema`): unknown keys, types,
ranges and choices are checked there, cross-checks in their model validators, and
:func:`sandfill.schema.validate` collects *every* problem into one
:class:`~sandfill.policies.document.errors.PolicyError`; each problem names the key path
(``tiers.burst.max_walltime``), the bad value and what is allowed. The validated document
is then turned into the frozen dataclasses the renderer and the simulator read.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from sandfill import units
from sandfill.policies.document.errors import PolicyError, Problem
from sandfill.policies.document.model import (
    BackfillSettings,
    ClusterShape,
    NodeSet,
    Policy,
    PreemptionSettings,
    PrioritySettings,
    PriorityWeights,
    Qos,
    SchedulerSettings,
    Tier,
)
from sandfill.policies.document.nodesets import empty_sets, expand_list
from sandfill.schema import (
    Invalid,
    PositiveDuration,
    SlurmName,
    Strict,
    check_slurm_name,
    validate,
)
from sandfill.units import Duration

_MAX_U32 = 4294967295
_MAX_TIER = 65533  # PriorityTier and PriorityJobFactor may not exceed 65533 (slurm.conf(5))


def _choice(value: Any) -> Any:
    """Choices are case-insensitive; YAML 1.1 reads a bare ``off`` as false."""
    if value is False:
        return "off"
    return value.lower() if isinstance(value, str) else value


def _window_range(seconds: int) -> int:
    if not 60 <= seconds <= 43200 * 60:
        raise ValueError(f"{units.format_duration(seconds)} must be between 1 minute and 30 days")
    return seconds


Seconds = PositiveDuration
Window = Annotated[PositiveDuration, AfterValidator(_window_range)]
Count = Annotated[StrictInt, Field(ge=1, le=_MAX_U32)]
Weight = Annotated[StrictInt, Field(ge=0, le=_MAX_U32)]
TierLevel = Annotated[StrictInt, Field(ge=0, le=_MAX_TIER)]
PreemptModeName = Annotated[Literal["off", "requeue", "cancel"], BeforeValidator(_choice)]
PreemptTypeName = Annotated[Literal["none", "partition_prio", "qos"], BeforeValidator(_choice)]
PriorityTypeName = Annotated[Literal["basic", "multifactor"], BeforeValidator(_choice)]
SchedulerTypeName = Annotated[Literal["backfill", "builtin"], BeforeValidator(_choice)]


class QosDoc(Strict):
    name: SlurmName | None = None  # default: the tier's name
    priority: Weight = 0
    max_jobs_per_user: Count | None = None
    max_cpus_per_user: Count | None = None


def _host_list(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a Slurm host list (a string such as gpu1 or cpu[1-2])")
    expand_list(value)
    return value


class NodesDoc(Strict):
    """A tier's node set: by feature (every listed one) or by Slurm host list; exactly one."""

    features: Annotated[list[SlurmName], Field(min_length=1)] | None = None
    list_: Annotated[str, BeforeValidator(_host_list)] | None = Field(None, alias="list")

    @model_validator(mode="after")
    def _exactly_one(self) -> NodesDoc:
        if (self.features is None) == (self.list_ is None):
            raise Invalid([Problem("", "give exactly one of features: [..] or list: NODELIST")])
        return self

    def node_set(self) -> NodeSet:
        feats = tuple(self.features) if self.features is not None else None
        return NodeSet(features=feats, list_=self.list_)


class TierDoc(Strict):
    partition: SlurmName | None = None  # default: the tier's name
    max_walltime: Seconds
    default_walltime: Seconds | None = None
    max_nodes: Count | None = None
    max_cpus_per_job: Count | None = None
    priority_tier: TierLevel = 1
    priority_job_factor: TierLevel = 1
    preempt_mode: PreemptModeName = "off"
    grace_time: Seconds | None = None  # partition GraceTime (preempted: SIGTERM, then SIGKILL)
    qos: QosDoc | None = None
    nodes: NodesDoc | None = None  # default: every node of the cluster

    @model_validator(mode="wrap")
    @classmethod
    def _default_within_max(cls, data: Any, handler: Any) -> TierDoc:
        tier = handler(data)
        if tier.grace_time is not None and tier.preempt_mode == "off":
            raise Invalid([Problem(
                "grace_time", "has no effect: the tier is never preempted (set preempt_mode "
                "to cancel or requeue, or leave grace_time out)", data.get("grace_time"), has_value=True)])
        if tier.default_walltime is not None and tier.default_walltime > tier.max_walltime:
            raise Invalid([Problem(
                "default_walltime",
                f"must not exceed the tier's max_walltime ({units.format_duration(tier.max_walltime)})",
                data.get("default_walltime"), has_value=True)])
        return tier


class WeightsDoc(Strict):
    age: Weight = 0
    job_size: Weight = 0
    partition: Weight = 0
    qos: Weight = 0
    fairshare: Weight = 0


class PriorityDoc(Strict):
    type: PriorityTypeName = "basic"
    weights: WeightsDoc | None = None
    max_age: Seconds = 7 * 86400
    favor_small: StrictBool = False


class BackfillDoc(Strict):
    interval: Annotated[StrictInt, Field(ge=1, le=10800)] = 30
    window: Window = 1440 * 60
    resolution: Annotated[StrictInt, Field(ge=1, le=3600)] = 60
    max_job_test: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 500
    max_job_user: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 0
    max_job_start: Annotated[StrictInt, Field(ge=0, le=10000)] = 0
    continue_: StrictBool = Field(False, alias="continue")

    @model_validator(mode="after")
    def _user_within_test(self) -> BackfillDoc:
        if self.max_job_user > self.max_job_test:
            raise Invalid([Problem("max_job_user", f"must not exceed max_job_test ({self.max_job_test})",
                                   self.max_job_user, has_value=True)])
        return self


class SchedulerDoc(Strict):
    type: SchedulerTypeName = "backfill"
    backfill: BackfillDoc | None = None


class PreemptionDoc(Strict):
    type: PreemptTypeName | None = None  # default: partition_prio when a tier is preemptable
    mode: PreemptModeName | None = None  # default: the first preemptable tier's mode


class PolicyDoc(Strict):
    """A policy file as written (see ``policies/default.yaml``)."""

    # Every name below reaches slurm.conf or sacctmgr (the policy and role names through the
    # fragment's header and metadata line): all follow the one rule, sandfill.schema.SLURM_NAME.
    name: SlurmName | None = None  # default: the file's name
    tiers: Annotated[dict[SlurmName, TierDoc], Field(min_length=1)]
    roles: dict[SlurmName, StrictStr]
    priority: PriorityDoc | None = None
    scheduler: SchedulerDoc | None = None
    preemption: PreemptionDoc | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> PolicyDoc:
        tiers = [_tier(name, t) for name, t in self.tiers.items()]
        problems = _role_problems(self.roles, list(self.tiers)) + _tier_problems(tiers)
        problems += _preemption(self.preemption, tiers)[1]
        if problems:
            raise Invalid(problems)
        return self


def _tier(name: str, doc: TierDoc) -> Tier:
    q = doc.qos or QosDoc()
    return Tier(
        name=name,
        partition=doc.partition or name,
        max_walltime=Duration(doc.max_walltime),
        default_walltime=Duration(doc.default_walltime) if doc.default_walltime is not None else None,
        max_nodes=doc.max_nodes,
        max_cpus_per_job=doc.max_cpus_per_job,
        priority_tier=doc.priority_tier,
        priority_job_factor=doc.priority_job_factor,
        preempt_mode=doc.preempt_mode,
        grace_time=Duration(doc.grace_time) if doc.grace_time is not None else None,
        qos=Qos(q.name or name, q.priority, q.max_jobs_per_user, q.max_cpus_per_user),
        nodes=doc.nodes.node_set() if doc.nodes is not None else None,
    )


def _role_problems(roles: dict[str, str], names: list[str]) -> list[Problem]:
    out = []
    for role, tier in roles.items():
        if tier not in names:
            hint = difflib.get_close_matches(tier, names, n=1)
            dym = f"; did you mean {hint[0]!r}?" if hint else ""
            out.append(Problem(f"roles.{role}", f"names no tier{dym} (tiers: {', '.join(names)})",
                               tier, has_value=True))
    if "default" not in roles:
        out.append(Problem("roles.default", "is required: the tier of jobs that name none"))
    return out


_PARTITION_FIELDS = ("max_walltime", "default_walltime", "max_nodes", "priority_tier",
                     "priority_job_factor", "preempt_mode", "grace_time", "qos", "nodes")


def _tier_problems(tiers: list[Tier]) -> list[Problem]:
    """Tiers sharing a partition or a QOS name must agree; a job as large as the tier allows
    must fit under its QOS's per-user CPU cap."""
    out: list[Problem] = []
    by_part: dict[str, Tier] = {}
    qos_names: dict[str, Tier] = {}
    for t in tiers:
        other = by_part.setdefault(t.partition, t)
        diffs = [f for f in _PARTITION_FIELDS if getattr(t, f) != getattr(other, f)]
        if diffs:
            out.append(Problem(
                f"tiers.{t.name}.partition",
                f"partition already used by tier {other.name!r} with different "
                f"{', '.join(diffs)}: one Slurm partition has one set of limits",
                t.partition, has_value=True))
        q = qos_names.setdefault(t.qos.name, t)
        if q.qos != t.qos:
            out.append(Problem(f"tiers.{t.name}.qos.name",
                               f"QOS name already used by tier {q.name!r} with different settings",
                               t.qos.name, has_value=True))
        cap = t.qos.max_cpus_per_user
        if t.max_cpus_per_job and cap and t.max_cpus_per_job > cap:
            out.append(Problem(f"tiers.{t.name}.max_cpus_per_job",
                               f"exceeds qos.max_cpus_per_user ({cap}): such a job could never start",
                               t.max_cpus_per_job, has_value=True))
    return out


def _preemption(doc: PreemptionDoc | None, tiers: list[Tier]) -> tuple[PreemptionSettings, list[Problem]]:
    """The preemption settings (derived from the tiers where left out) and what is wrong."""
    preemptable = [t for t in tiers if t.preemptable]
    derived_mode = preemptable[0].preempt_mode if preemptable else "off"
    doc = doc or PreemptionDoc()
    ptype = doc.type or ("partition_prio" if preemptable else "none")
    mode = doc.mode or derived_mode
    out: list[Problem] = []
    if ptype == "none" and preemptable:
        out.append(Problem("preemption.type", "tiers " + ", ".join(t.name for t in preemptable)
                           + " set preempt_mode but preemption is off; use partition_prio or qos",
                           "none", has_value=True))
    if ptype != "none" and mode == "off":
        out.append(Problem("preemption.mode", "must be requeue or cancel when preemption is on "
                           "(Slurm refuses PreemptMode=OFF with an enabled PreemptType)",
                           "off", has_value=True))
    if ptype != "none" and not preemptable:
        out.append(Problem("preemption.type", "no tier sets preempt_mode: nothing to preempt",
                           ptype, has_value=True))
    return PreemptionSettings(type=ptype, mode=mode), out


def _policy(doc: PolicyDoc, default_name: str) -> Policy:
    tiers = [_tier(name, t) for name, t in doc.tiers.items()]
    pr = doc.priority or PriorityDoc()
    sc = doc.scheduler or SchedulerDoc()
    bf = sc.backfill or BackfillDoc()
    return Policy(
        tiers=tuple(tiers),
        roles=tuple(doc.roles.items()),
        priority=PrioritySettings(
            type=pr.type,
            weights=PriorityWeights(**(pr.weights or WeightsDoc()).model_dump()),
            max_age=Duration(pr.max_age),
            favor_small=pr.favor_small,
        ),
        scheduler=SchedulerSettings(type=sc.type, backfill=BackfillSettings(
            interval=bf.interval, window=Duration(bf.window), resolution=bf.resolution,
            max_job_test=bf.max_job_test, max_job_user=bf.max_job_user,
            max_job_start=bf.max_job_start, continue_=bf.continue_)),
        preemption=_preemption(doc.preemption, tiers)[0],
        name=doc.name or default_name,
    )


def default_policy_path() -> str:
    """Path of the packaged ``default.yaml``."""
    return str(resources.files("sandfill.policies").joinpath("default.yaml"))


def load_policy(
    path: str | os.PathLike[str] | None = None, *, shape: ClusterShape | None = None
) -> Policy:
    """Read and validate a policy file (``None``: the packaged ``default.yaml``)."""
    path = default_policy_path() if path is None else os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise PolicyError([Problem("", f"cannot read {path}: {exc.strerror}")], path) from None
    return policy_from_yaml(text, source=path, shape=shape)


def policy_from_yaml(
    text: str, *, source: str | None = None, shape: ClusterShape | None = None
) -> Policy:
    """Parse YAML text into a validated Policy (invalid YAML is reported with its line)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([Problem("", f"invalid YAML: {where}{what}")], source) from None
    name = os.path.splitext(os.path.basename(source))[0] if source else "policy"
    return policy_from_mapping(data, shape=shape, source=source, default_name=name)


def policy_from_mapping(
    data: object,
    *,
    shape: ClusterShape | None = None,
    source: str | None = None,
    default_name: str = "policy",
) -> Policy:
    """Validate a mapping (as from YAML) and build the Policy, or raise PolicyError."""
    if not isinstance(data, Mapping):
        raise PolicyError([Problem("", "the policy file must be a mapping of keys to values",
                                   data, has_value=True)], source)
    doc = validate(PolicyDoc, data, source=source, error=PolicyError)
    problems = [] if doc.name is not None else _default_name_problems(default_name)
    if problems:
        raise PolicyError(problems, source)
    policy = _policy(doc, default_name)
    problems = shape_problems(policy, shape) if shape is not None else []
    if problems:
        raise PolicyError(problems, source)
    return policy


def _default_name_problems(default_name: str) -> list[Problem]:
    """A policy without ``name:`` takes its file's name, which must follow the name rule."""
    try:
        check_slurm_name(default_name)
    except ValueError as exc:
        return [Problem("name", f"is not set, and the file's name cannot stand in: {exc}; "
                                "set name: in the file")]
    return []


def policy_to_mapping(policy: Policy) -> dict[str, Any]:
    """The mapping form of ``policy`` (durations in Slurm's form); ``policy_from_mapping``
    of it gives an equal Policy."""
    m = _plain(policy)
    tiers = {}
    for t in m["tiers"]:
        name = t.pop("name")
        nodes = t.pop("nodes")
        t["qos"] = t.pop("qos")  # last, as in the file
        if nodes is not None:  # only tiers with a node set say so
            t["nodes"] = {k: v for k, v in nodes.items() if v is not None}
        tiers[name] = t
    m["priority"]["weights"] = m["priority"].pop("weights")
    return {"name": m.pop("name"), **m, "tiers": tiers, "roles": dict(policy.roles)}


def _plain(value: Any) -> Any:
    """Dataclasses → dicts (``continue_`` → ``continue``), Durations → ``[D-]HH:MM:SS``."""
    if isinstance(value, Duration):
        return value.slurm()
    if is_dataclass(value):
        return {f.name.rstrip("_"): _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def policy_warnings(policy: Policy, *, accounting: bool = True) -> list[str]:
    """Things that are valid but probably not meant (not errors)."""
    out: list[str] = []
    if policy.priority.type == "basic":
        out.append(
            "priority.type is 'basic': Slurm 22.05 then schedules FIFO (priority/basic, its "
            "default) and ignores every priority weight; set priority.type: multifactor"
        )
    default = policy.default_tier
    for t in policy.tiers:
        if t.preemptable and (t is default or t.name == "batch" or t.partition == "batch"):
            out.append(
                f"tiers.{t.name}.preempt_mode is {t.preempt_mode!r}: the batch/default tier "
                "can be preempted by higher tiers (set preempt_mode: off unless that is meant)"
            )
    bf = policy.scheduler.backfill
    if policy.scheduler.type == "backfill" and bf.window < policy.max_walltime:
        out.append(
            f"scheduler.backfill.window ({bf.window}) is shorter than the longest max_walltime "
            f"({policy.max_walltime}): backfill cannot plan such jobs and they may starve"
        )
    if not accounting:
        from sandfill.policies.document.render import settings_without_accounting

        for item in settings_without_accounting(policy):
            out.append(f"without slurmdbd (accounting off) this has no effect: {item}")
    return out


def shape_problems(policy: Policy, shape: ClusterShape) -> list[Problem]:
    """What does not fit a cluster of ``shape`` (nodes x CPUs per node)."""
    out: list[Problem] = []
    for t in policy.tiers:
        p = f"tiers.{t.name}"
        if t.max_nodes is not None and t.max_nodes > shape.nodes:
            out.append(_at(
                f"{p}.max_nodes", t.max_nodes, f"exceeds the cluster's {shape.nodes} nodes"
            ))
        if t.max_cpus_per_job is not None:
            if t.max_cpus_per_job > shape.cpus:
                out.append(_at(
                    f"{p}.max_cpus_per_job",
                    t.max_cpus_per_job,
                    f"exceeds the cluster's {shape.cpus} CPUs "
                    f"({shape.nodes} nodes x {shape.cpus_per_node})",
                ))
            elif t.max_nodes is not None and (
                t.max_cpus_per_job > t.max_nodes * shape.cpus_per_node
            ):
                out.append(_at(
                    f"{p}.max_cpus_per_job",
                    t.max_cpus_per_job,
                    f"cannot fit in max_nodes={t.max_nodes} nodes of "
                    f"{shape.cpus_per_node} CPUs",
                ))
        if t.qos.max_cpus_per_user is not None and t.qos.max_cpus_per_user > shape.cpus:
            out.append(_at(
                f"{p}.qos.max_cpus_per_user",
                t.qos.max_cpus_per_user,
                f"exceeds the cluster's {shape.cpus} CPUs (the cap would never bind)",
            ))
    return out + node_set_problems(policy, shape)


def node_set_problems(policy: Policy, shape: ClusterShape) -> list[Problem]:
    """Node sets that match none of the known machine's nodes (a partition Slurm would
    refuse or leave empty); nothing when the machine's nodes are not known."""
    out = [_at(f"tiers.{t.name}.nodes", _set_value(t.nodes), why)
           for t, why in empty_sets(policy, shape.machine) if t.nodes is not None]
    return out


def _set_value(nodes: NodeSet | None) -> object:
    if nodes is None:
        return None
    return list(nodes.features) if nodes.features is not None else nodes.list_


def _at(path: str, value: object, message: str) -> Problem:
    return Problem(path, message, value, has_value=True)
