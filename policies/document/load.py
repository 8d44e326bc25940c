"""Load and validate policy files into the frozen :class:`~sandfill.policies.document.model.Policy`.

This is the only module that reads policy YAML. Validation collects *every* problem and
raises one :class:`~sandfill.policies.document.errors.PolicyError`; each problem names the key path
(``tiers.burst.max_walltime``), the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from sandfill.policies.document.errors import _NO_VALUE, PolicyError, Problem
from sandfill.policies.document.model import (
    PREEMPT_MODES,
    PREEMPT_TYPES,
    PRIORITY_TYPES,
    SCHEDULER_TYPES,
    BackfillSettings,
    ClusterShape,
    Policy,
    PreemptionSettings,
    PrioritySettings,
    PriorityWeights,
    Qos,
    SchedulerSettings,
    Tier,
)
from sandfill.units import Duration

_MAX_U32 = 4294967295
_MAX_TIER = 65533  # PriorityTier and PriorityJobFactor may not exceed 65533 (slurm.conf(5))

TOP_KEYS = ("name", "tiers", "roles", "priority", "scheduler", "preemption")
TIER_KEYS = (
    "partition",
    "max_walltime",
    "default_walltime",
    "max_nodes",
    "max_cpus_per_job",
    "priority_tier",
    "priority_job_factor",
    "preempt_mode",
    "qos",
)
QOS_KEYS = ("name", "priority", "max_jobs_per_user", "max_cpus_per_user")
PRIORITY_KEYS = ("type", "weights", "max_age", "favor_small")
WEIGHT_KEYS = ("age", "job_size", "partition", "qos", "fairshare")
SCHEDULER_KEYS = ("type", "backfill")
BACKFILL_KEYS = (
    "interval",
    "window",
    "resolution",
    "max_job_test",
    "max_job_user",
    "max_job_start",
    "continue",
)
PREEMPTION_KEYS = ("type", "mode")
KNOWN_ROLES = ("notebooks", "dask-workers", "default")


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
        raise PolicyError(
            [Problem("", _NO_VALUE, f"cannot read {path}: {exc.strerror}")], path
        ) from None
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
        raise PolicyError(
            [Problem("", _NO_VALUE, f"invalid YAML: {where}{what}")], source
        ) from None
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
    v = _Validator()
    policy = v.policy(data, default_name)
    if policy is not None and shape is not None:
        v.check_shape(policy, shape)
    if v.problems or policy is None:
        raise PolicyError(v.problems, source)
    return policy


def policy_to_mapping(policy: Policy) -> dict[str, Any]:
    """The mapping form of ``policy``; ``policy_from_mapping`` of it gives an equal Policy."""
    tiers: dict[str, Any] = {}
    for t in policy.tiers:
        tiers[t.name] = {
            "partition": t.partition,
            "max_walltime": t.max_walltime.slurm(),
            "default_walltime": t.default_walltime.slurm() if t.default_walltime else None,
            "max_nodes": t.max_nodes,
            "max_cpus_per_job": t.max_cpus_per_job,
            "priority_tier": t.priority_tier,
            "priority_job_factor": t.priority_job_factor,
            "preempt_mode": t.preempt_mode,
            "qos": {
                "name": t.qos.name,
                "priority": t.qos.priority,
                "max_jobs_per_user": t.qos.max_jobs_per_user,
                "max_cpus_per_user": t.qos.max_cpus_per_user,
            },
        }
    w = policy.priority.weights
    bf = policy.scheduler.backfill
    return {
        "name": policy.name,
        "tiers": tiers,
        "roles": dict(policy.roles),
        "priority": {
            "type": policy.priority.type,
            "max_age": policy.priority.max_age.slurm(),
            "favor_small": policy.priority.favor_small,
            "weights": {
                "age": w.age,
                "job_size": w.job_size,
                "partition": w.partition,
                "qos": w.qos,
                "fairshare": w.fairshare,
            },
        },
        "scheduler": {
            "type": policy.scheduler.type,
            "backfill": {
                "interval": bf.interval,
                "window": bf.window.slurm(),
                "resolution": bf.resolution,
                "max_job_test": bf.max_job_test,
                "max_job_user": bf.max_job_user,
                "max_job_start": bf.max_job_start,
                "continue": bf.continue_,
            },
        },
        "preemption": {"type": policy.preemption.type, "mode": policy.preemption.mode},
    }


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


# ---------------------------------------------------------------------------------------------


@dataclass
class _Validator:
    problems: list[Problem] = field(default_factory=list)

    # -- primitives ---------------------------------------------------------------------------
    def err(self, path: str, value: object, message: str) -> None:
        self.problems.append(Problem(path, value, message))

    def mapping(self, value: object, path: str, allowed: tuple[str, ...]) -> Mapping | None:
        if not isinstance(value, Mapping):
            what = "the policy file" if not path else path
            self.err(path, value, f"{what} must be a mapping of keys to values")
            return None
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                dym = f"; did you mean {hint[0]!r}?" if hint else ""
                self.err(
                    _join(path, str(key)),
                    _NO_VALUE,
                    f"unknown key {key!r}{dym} (allowed: {', '.join(allowed)})",
                )
        return value

    def integer(
        self,
        m: Mapping,
        key: str,
        path: str,
        default: int | None,
        *,
        lo: int = 0,
        hi: int = _MAX_U32,
        required: bool = False,
    ) -> int | None:
        p = _join(path, key)
        if key not in m or m[key] is None:
            if required:
                self.err(p, _NO_VALUE, "is required")
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(p, value, f"must be an integer between {lo} and {hi}")
            return default
        if not lo <= value <= hi:
            neg = "must not be negative; " if value < 0 else ""
            self.err(p, value, f"{neg}must be between {lo} and {hi}")
            return default
        return value

    def boolean(self, m: Mapping, key: str, path: str, default: bool) -> bool:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if not isinstance(value, bool):
            self.err(_join(path, key), value, "must be true or false")
            return default
        return value

    def choice(self, m: Mapping, key: str, path: str, default: str, allowed: tuple[str, ...]):
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if value is False and "off" in allowed:  # YAML 1.1 reads a bare `off` as false
            return "off"
        if not isinstance(value, str) or value.lower() not in allowed:
            self.err(_join(path, key), value, f"must be one of: {', '.join(allowed)}")
            return default
        return value.lower()

    def string(self, m: Mapping, key: str, path: str, default: str) -> str:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            self.err(_join(path, key), value, "must be a non-empty name without spaces")
            return default
        return value

    def duration(
        self, m: Mapping, key: str, path: str, default: Duration | None, *, required=False
    ) -> Duration | None:
        p = _join(path, key)
        if key not in m or m[key] is None:
            if required:
                self.err(p, _NO_VALUE, "is required (a duration such as '8:00:00' or '2h')")
            return default
        try:
            d = Duration.parse(m[key])
        except ValueError as exc:
            self.err(p, m[key], f"{exc}")
            return default
        if d.seconds == 0:
            self.err(p, m[key], "must be longer than zero")
            return default
        return d

    # -- sections -----------------------------------------------------------------------------
    def policy(self, data: object, default_name: str) -> Policy | None:
        top = self.mapping(data, "", TOP_KEYS)
        if top is None:
            return None
        name = self.string(top, "name", "", default_name)
        tiers = self.tiers(top.get("tiers"))
        roles = self.roles(top.get("roles"), tiers)
        priority = self.priority(top.get("priority"))
        scheduler = self.scheduler(top.get("scheduler"))
        preemption = self.preemption(top.get("preemption"), tiers)
        self.cross_checks(tiers)
        if tiers is None or roles is None:
            return None
        return Policy(
            tiers=tuple(tiers),
            roles=tuple(roles.items()),
            priority=priority,
            scheduler=scheduler,
            preemption=preemption,
            name=name,
        )

    def tiers(self, value: object) -> list[Tier] | None:
        if value is None:
            self.err("tiers", _NO_VALUE, "is required: a mapping of tier name to settings")
            return None
        if not isinstance(value, Mapping) or not value:
            self.err("tiers", value, "must be a non-empty mapping of tier name to settings")
            return None
        out = []
        for name, spec in value.items():
            tier = self.tier(str(name), spec)
            if tier is not None:
                out.append(tier)
        return out

    def tier(self, name: str, spec: object) -> Tier | None:
        path = f"tiers.{name}"
        m = self.mapping(spec, path, TIER_KEYS)
        if m is None:
            return None
        partition = self.string(m, "partition", path, name)
        max_wall = self.duration(m, "max_walltime", path, None, required=True)
        def_wall = self.duration(m, "default_walltime", path, None)
        if max_wall is not None and def_wall is not None and def_wall > max_wall:
            self.err(
                f"{path}.default_walltime",
                m["default_walltime"],
                f"must not exceed the tier's max_walltime ({max_wall})",
            )
        max_nodes = self.integer(m, "max_nodes", path, None, lo=1)
        max_cpus = self.integer(m, "max_cpus_per_job", path, None, lo=1)
        ptier = self.integer(m, "priority_tier", path, 1, hi=_MAX_TIER)
        pjf = self.integer(m, "priority_job_factor", path, 1, hi=_MAX_TIER)
        pmode = self.choice(m, "preempt_mode", path, "off", PREEMPT_MODES)
        qos = self.qos(m.get("qos"), f"{path}.qos", name)
        if max_wall is None:
            return None
        return Tier(
            name=name,
            partition=partition,
            max_walltime=max_wall,
            default_walltime=def_wall,
            max_nodes=max_nodes,
            max_cpus_per_job=max_cpus,
            priority_tier=ptier,
            priority_job_factor=pjf,
            preempt_mode=pmode,
            qos=qos,
        )

    def qos(self, value: object, path: str, tier_name: str) -> Qos:
        if value is None:
            return Qos(name=tier_name)
        m = self.mapping(value, path, QOS_KEYS)
        if m is None:
            return Qos(name=tier_name)
        return Qos(
            name=self.string(m, "name", path, tier_name),
            priority=self.integer(m, "priority", path, 0),
            max_jobs_per_user=self.integer(m, "max_jobs_per_user", path, None, lo=1),
            max_cpus_per_user=self.integer(m, "max_cpus_per_user", path, None, lo=1),
        )

    def roles(self, value: object, tiers: list[Tier] | None) -> dict[str, str] | None:
        if value is None:
            self.err("roles", _NO_VALUE, "is required (at least `default: <tier>`)")
            return None
        if not isinstance(value, Mapping):
            self.err("roles", value, "must be a mapping of role to tier name")
            return None
        names = [t.name for t in tiers or []]
        out: dict[str, str] = {}
        for role, tier in value.items():
            p = f"roles.{role}"
            if not isinstance(tier, str):
                self.err(p, tier, "must name a tier")
                continue
            if tiers is not None and tier not in names:
                hint = difflib.get_close_matches(tier, names, n=1)
                dym = f"; did you mean {hint[0]!r}?" if hint else ""
                self.err(p, tier, f"names no tier{dym} (tiers: {', '.join(names)})")
                continue
            out[str(role)] = tier
        if "default" not in value:
            self.err("roles.default", _NO_VALUE, "is required: the tier of jobs that name none")
            return None
        return out if "default" in out else None

    def priority(self, value: object) -> PrioritySettings:
        if value is None:
            return PrioritySettings()
        m = self.mapping(value, "priority", PRIORITY_KEYS)
        if m is None:
            return PrioritySettings()
        weights = PriorityWeights()
        if m.get("weights") is not None:
            wm = self.mapping(m["weights"], "priority.weights", WEIGHT_KEYS)
            if wm is not None:
                weights = PriorityWeights(
                    **{k: self.integer(wm, k, "priority.weights", 0) for k in WEIGHT_KEYS}
                )
        return PrioritySettings(
            type=self.choice(m, "type", "priority", "basic", PRIORITY_TYPES),
            weights=weights,
            max_age=self.duration(m, "max_age", "priority", Duration(7 * 86400)),
            favor_small=self.boolean(m, "favor_small", "priority", False),
        )

    def scheduler(self, value: object) -> SchedulerSettings:
        if value is None:
            return SchedulerSettings()
        m = self.mapping(value, "scheduler", SCHEDULER_KEYS)
        if m is None:
            return SchedulerSettings()
        bf = BackfillSettings()
        if m.get("backfill") is not None:
            p = "scheduler.backfill"
            b = self.mapping(m["backfill"], p, BACKFILL_KEYS)
            if b is not None:
                window = self.duration(b, "window", p, bf.window)
                if window is not None and not 60 <= window.seconds <= 43200 * 60:
                    self.err(f"{p}.window", b["window"], "must be between 1 minute and 30 days")
                    window = bf.window
                bf = BackfillSettings(
                    interval=self.integer(b, "interval", p, 30, lo=1, hi=10800),
                    window=window,
                    resolution=self.integer(b, "resolution", p, 60, lo=1, hi=3600),
                    max_job_test=self.integer(b, "max_job_test", p, 500, lo=1, hi=1_000_000),
                    max_job_user=self.integer(b, "max_job_user", p, 0, hi=1_000_000),
                    max_job_start=self.integer(b, "max_job_start", p, 0, hi=10000),
                    continue_=self.boolean(b, "continue", p, False),
                )
                if bf.max_job_user > bf.max_job_test:
                    self.err(
                        f"{p}.max_job_user",
                        bf.max_job_user,
                        f"must not exceed max_job_test ({bf.max_job_test})",
                    )
        return SchedulerSettings(
            type=self.choice(m, "type", "scheduler", "backfill", SCHEDULER_TYPES), backfill=bf
        )

    def preemption(self, value: object, tiers: list[Tier] | None) -> PreemptionSettings:
        preemptable = [t for t in tiers or [] if t.preemptable]
        derived_mode = preemptable[0].preempt_mode if preemptable else "off"
        if value is None:
            return PreemptionSettings(
                type="partition_prio" if preemptable else "none", mode=derived_mode
            )
        m = self.mapping(value, "preemption", PREEMPTION_KEYS)
        if m is None:
            return PreemptionSettings()
        ptype = self.choice(m, "type", "preemption", "", PREEMPT_TYPES) or (
            "partition_prio" if preemptable else "none"
        )
        mode = self.choice(m, "mode", "preemption", derived_mode, PREEMPT_MODES)
        if ptype == "none" and preemptable:
            self.err(
                "preemption.type",
                "none",
                "tiers "
                + ", ".join(t.name for t in preemptable)
                + " set preempt_mode but preemption is off; use partition_prio or qos",
            )
        if ptype != "none" and mode == "off":
            self.err(
                "preemption.mode",
                "off",
                "must be requeue or cancel when preemption is on (Slurm refuses "
                "PreemptMode=OFF with an enabled PreemptType)",
            )
        if ptype != "none" and not preemptable:
            self.err("preemption.type", ptype, "no tier sets preempt_mode: nothing to preempt")
        return PreemptionSettings(type=ptype, mode=mode)

    def cross_checks(self, tiers: list[Tier] | None) -> None:
        by_part: dict[str, Tier] = {}
        qos_names: dict[str, Tier] = {}
        for t in tiers or []:
            other = by_part.get(t.partition)
            if other is not None:
                diffs = [
                    f
                    for f in (
                        "max_walltime",
                        "default_walltime",
                        "max_nodes",
                        "priority_tier",
                        "priority_job_factor",
                        "preempt_mode",
                        "qos",
                    )
                    if getattr(t, f) != getattr(other, f)
                ]
                if diffs:
                    self.err(
                        f"tiers.{t.name}.partition",
                        t.partition,
                        f"partition already used by tier {other.name!r} with different "
                        f"{', '.join(diffs)}: one Slurm partition has one set of limits",
                    )
            else:
                by_part[t.partition] = t
            q = qos_names.get(t.qos.name)
            if q is not None and q.qos != t.qos:
                self.err(
                    f"tiers.{t.name}.qos.name",
                    t.qos.name,
                    f"QOS name already used by tier {q.name!r} with different settings",
                )
            qos_names.setdefault(t.qos.name, t)
            if t.max_cpus_per_job and t.qos.max_cpus_per_user:
                if t.max_cpus_per_job > t.qos.max_cpus_per_user:
                    self.err(
                        f"tiers.{t.name}.max_cpus_per_job",
                        t.max_cpus_per_job,
                        f"exceeds qos.max_cpus_per_user ({t.qos.max_cpus_per_user}): "
                        "such a job could never start",
                    )

    def check_shape(self, policy: Policy, shape: ClusterShape) -> None:
        for t in policy.tiers:
            p = f"tiers.{t.name}"
            if t.max_nodes is not None and t.max_nodes > shape.nodes:
                self.err(
                    f"{p}.max_nodes", t.max_nodes, f"exceeds the cluster's {shape.nodes} nodes"
                )
            if t.max_cpus_per_job is not None:
                if t.max_cpus_per_job > shape.cpus:
                    self.err(
                        f"{p}.max_cpus_per_job",
                        t.max_cpus_per_job,
                        f"exceeds the cluster's {shape.cpus} CPUs "
                        f"({shape.nodes} nodes x {shape.cpus_per_node})",
                    )
                elif t.max_nodes is not None and (
                    t.max_cpus_per_job > t.max_nodes * shape.cpus_per_node
                ):
                    self.err(
                        f"{p}.max_cpus_per_job",
                        t.max_cpus_per_job,
                        f"cannot fit in max_nodes={t.max_nodes} nodes of "
                        f"{shape.cpus_per_node} CPUs",
                    )
            if t.qos.max_cpus_per_user is not None and t.qos.max_cpus_per_user > shape.cpus:
                self.err(
                    f"{p}.qos.max_cpus_per_user",
                    t.qos.max_cpus_per_user,
                    f"exceeds the cluster's {shape.cpus} CPUs (the cap would never bind)",
                )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
