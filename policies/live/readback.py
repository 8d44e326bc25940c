"""A live cluster's policy, read back into the policy schema (``sandfill policy show``).

Slurm settings come from the controller and slurmdbd (:mod:`sandfill.policies.live.state`):

* ``PriorityType``, ``PriorityWeight*``, ``PriorityMaxAge``, ``PriorityFavorSmall``;
* ``SchedulerType`` and the ``bf_*`` entries of ``SchedulerParameters`` (absent = Slurm's
  default; other scheduler parameters are not part of a policy);
* ``PreemptType``/``PreemptMode`` and per partition ``MaxTime``, ``DefaultTime``,
  ``MaxNodes``, ``PriorityTier``, ``PriorityJobFactor``, ``Default``, ``QoS``,
  ``PreemptMode``, ``GraceTime`` -- one tier per partition, in slurm.conf order;
* per partition QOS: ``Priority``, ``MaxJobsPU``, ``MaxTRESPU`` cpu, ``PreemptMode``.

What Slurm does not store (the policy's name, its roles, tier names that differ from the
partition, ``max_cpus_per_job``) comes from the fragment's ``# sandfill-policy:`` line when
there is one (:mod:`sandfill.policies.live.fragment`); otherwise tiers are named after their
partitions, the only role is ``default`` (the ``Default=YES`` partition) and the name is
``live``.
"""

from __future__ import annotations

from typing import Any

from sandfill.policies.document.model import BackfillSettings, NodeSet
from sandfill.policies.document.nodesets import expand_list, resolve
from sandfill.policies.live.state import LiveState
from sandfill.slurm.scontrol import scheduler_params
from sandfill.units import format_duration, parse_slurm_time

_BF_KEYS = {
    "bf_interval": "interval",
    "bf_resolution": "resolution",
    "bf_max_job_test": "max_job_test",
    "bf_max_job_user": "max_job_user",
    "bf_max_job_start": "max_job_start",
}


def live_mapping(
    state: LiveState, meta: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The policy mapping of ``state`` and notes on what could not be expressed exactly."""
    notes: list[str] = []
    meta = meta or {}
    cfg = state.config
    preempt_type = cfg.get("PreemptType", "preempt/none").split("/")[-1]
    tiers, default_tier = _tiers(state, meta, preempt_type, notes)
    mapping = {
        "name": meta.get("name") or "live",
        "tiers": tiers,
        "roles": _roles(meta, tiers, default_tier, notes),
        "priority": _priority(cfg),
        "scheduler": _scheduler(cfg),
        "preemption": {"type": preempt_type, "mode": _first(cfg.get("PreemptMode", "OFF"))},
    }
    return mapping, notes


def _tiers(state: LiveState, meta: dict[str, Any], preempt_type: str,
           notes: list[str]) -> tuple[dict[str, Any], str | None]:
    """One tier per partition (or per tier the metadata maps to it), and the tier of the
    first ``Default=YES`` partition."""
    tier_of_part: dict[str, list[str]] = {}
    for tier, part in (meta.get("tiers") or {}).items():
        tier_of_part.setdefault(part, []).append(tier)
    max_cpus = meta.get("max_cpus_per_job") or {}
    tiers: dict[str, Any] = {}
    default_tier = None
    for p in state.partitions:
        pname = p.get("PartitionName", "")
        for tname in tier_of_part.get(pname) or [pname]:
            tiers[tname] = _tier(state, p, tname, preempt_type, notes)
            tiers[tname]["max_cpus_per_job"] = max_cpus.get(tname)
            nodes = node_set(state, p.get("Nodes", ""), tname, meta)
            if nodes is not None:
                tiers[tname]["nodes"] = nodes
            if p.get("Default") == "YES" and default_tier is None:
                default_tier = tname
    return tiers, default_tier


def _tier(state: LiveState, p: dict[str, str], tname: str, preempt_type: str,
          notes: list[str]) -> dict[str, Any]:
    pname = p.get("PartitionName", "")
    qos_name = p.get("QoS", "N/A")
    qos_row = state.qos.get(qos_name) if qos_name not in ("N/A", "") else None
    qos: dict[str, Any] = {"name": qos_name if qos_row else tname, "priority": 0,
                           "max_jobs_per_user": None, "max_cpus_per_user": None}
    if qos_row is not None:
        qos.update(priority=qos_row.priority,
                   max_jobs_per_user=qos_row.max_jobs_per_user,
                   max_cpus_per_user=qos_row.max_cpus_per_user)
    if preempt_type == "partition_prio":
        pmode = _first(p.get("PreemptMode", "OFF"))
    elif preempt_type == "qos" and qos_row is not None:
        pmode = qos_row.preempt_mode if qos_row.preempt_mode != "cluster" else "off"
    else:
        pmode = "off"
    return {
        "partition": pname,
        "max_walltime": _limit(p.get("MaxTime"), f"partition {pname} MaxTime", notes),
        "default_walltime": _opt_time(p.get("DefaultTime")),
        "max_nodes": _opt_int(p.get("MaxNodes")),
        "max_cpus_per_job": None,
        "priority_tier": _int(p.get("PriorityTier"), 1),
        "priority_job_factor": _int(p.get("PriorityJobFactor"), 1),
        "preempt_mode": pmode,
        "grace_time": _opt_seconds(p.get("GraceTime")),
        "qos": qos,
    }


def node_set(state: LiveState, listed: str, tier: str, meta: dict[str, Any]) -> dict[str, Any] | None:
    """A partition's ``Nodes=`` as the tier's node set: None when it is the whole cluster
    (the node list the fragment was written for, every node, or one list all partitions
    share while the metadata names no node set); the set the fragment's
    metadata gives for the tier when it resolves to exactly these nodes; else the list."""
    have = _expand(listed)
    written = (meta.get("node_sets") or {}).get(tier)
    if isinstance(written, dict) and state.nodes:
        try:
            ns = NodeSet(features=tuple(written["features"]) if "features" in written else None,
                         list_=written.get("list"))
            if set(resolve(ns, state.nodes)) == have:
                return written
        except (KeyError, TypeError, ValueError):
            pass  # a hand-edited metadata line: the nodes as Slurm has them
    base = meta.get("nodes")
    everything = {n.name for n in state.nodes}
    shared = len({q.get("Nodes", "") for q in state.partitions}) == 1
    if (shared and not meta.get("node_sets")) or listed == "ALL" or (isinstance(base, str) and have == _expand(base)) or have == everything:
        return None
    if not isinstance(base, str) and not state.nodes:
        return None  # nothing to compare with: taken as the whole cluster, as before
    return {"list": listed}


def _expand(listed: str) -> set[str]:
    try:
        return set(expand_list(listed))
    except ValueError:
        return set()


def _roles(meta: dict[str, Any], tiers: dict[str, Any], default_tier: str | None,
           notes: list[str]) -> dict[str, str]:
    roles = dict(meta.get("roles") or {})
    roles = {r: t for r, t in roles.items() if t in tiers and r != "default"}
    if default_tier is not None:
        roles["default"] = default_tier
    elif tiers:
        notes.append("no partition has Default=YES: roles.default set to the first tier")
        roles["default"] = next(iter(tiers))
    return roles


def _priority(cfg: dict[str, str]) -> dict[str, Any]:
    prio_type = cfg.get("PriorityType", "priority/basic").split("/")[-1]
    priority: dict[str, Any] = {"type": prio_type}
    if prio_type == "multifactor":
        priority.update(
            max_age=_time(cfg.get("PriorityMaxAge"), "7-00:00:00"),
            favor_small=cfg.get("PriorityFavorSmall", "No").lower() == "yes",
            weights={
                "age": _int(cfg.get("PriorityWeightAge"), 0),
                "job_size": _int(cfg.get("PriorityWeightJobSize"), 0),
                "partition": _int(cfg.get("PriorityWeightPartition"), 0),
                "qos": _int(cfg.get("PriorityWeightQOS"), 0),
                "fairshare": _int(cfg.get("PriorityWeightFairShare"), 0),
            },
        )
    return priority


def _scheduler(cfg: dict[str, str]) -> dict[str, Any]:
    sched_type = cfg.get("SchedulerType", "sched/backfill").split("/")[-1]
    scheduler: dict[str, Any] = {"type": sched_type}
    if sched_type == "backfill":
        scheduler["backfill"] = backfill_mapping(cfg.get("SchedulerParameters", ""))
    return scheduler


def backfill_mapping(params: str) -> dict[str, Any]:
    """The ``bf_*`` knobs of a ``SchedulerParameters`` value (absent ones at the defaults)."""
    d = BackfillSettings()
    out: dict[str, Any] = {
        "interval": d.interval,
        "window": d.window.slurm(),
        "resolution": d.resolution,
        "max_job_test": d.max_job_test,
        "max_job_user": d.max_job_user,
        "max_job_start": d.max_job_start,
        "continue": False,
    }
    given = scheduler_params(params)
    out["continue"] = "bf_continue" in given
    if given.get("bf_window", "").isdigit():
        out["window"] = format_duration(int(given["bf_window"]) * 60)
    for key, name in _BF_KEYS.items():
        if given.get(key, "").isdigit():
            out[name] = int(given[key])
    return out


def _first(text: str) -> str:
    return text.split(",")[0].strip().lower() or "off"


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _opt_int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _opt_seconds(text: str | None) -> str | None:
    """Partition ``GraceTime`` (whole seconds; 0, Slurm's default, is no grace time)."""
    n = _int(text, 0)
    return f"{n}s" if n > 0 else None


def _opt_time(text: str | None) -> str | None:
    seconds = parse_slurm_time(text or "")
    return format_duration(seconds) if seconds is not None else None


def _time(text: str | None, default: str) -> str:
    seconds = parse_slurm_time(text or "")
    return format_duration(seconds) if seconds is not None else default


def _limit(text: str | None, what: str, notes: list[str]) -> str:
    seconds = parse_slurm_time(text or "")
    if seconds is None:
        notes.append(f"{what} is {text or 'unset'}: policies need a finite limit; "
                     "shown as 365-00:00:00")
        return "365-00:00:00"
    return format_duration(seconds)
