"""Key-by-key comparison of two policies as Slurm would run them.

Both sides are reduced to what can take effect (:func:`effective_mapping`): the weights of a
``priority/basic`` cluster, the backfill knobs of ``sched/builtin`` and, without slurmdbd,
the QOS are not compared (Slurm does not keep them); the policy's ``name`` is a label and
never a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandfill.policies.document.load import policy_to_mapping
from sandfill.policies.document.model import Policy

# Keys `scontrol reconfigure` cannot change: slurm.conf(5) of 22.05 says SchedulerType needs
# a slurmctld restart (reconfigure answers "SchedulerType change requires restart"); the
# priority plugin is loaded once at start-up, so a PriorityType change shows up in
# `scontrol show config` but the old plugin keeps ordering jobs until slurmctld restarts.
RESTART_KEYS: dict[str, str] = {
    "scheduler.type": "SchedulerType (slurmctld restart)",
    "priority.type": "PriorityType (slurmctld restart: the priority plugin loads at start-up)",
}


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    live: Any  # _MISSING when the key is new
    wanted: Any  # _MISSING when the key goes away

    def __str__(self) -> str:
        if self.live is MISSING:
            return f"+ {self.key}: {_fmt(self.wanted)}"
        if self.wanted is MISSING:
            return f"- {self.key}: {_fmt(self.live)}"
        return f"~ {self.key}: {_fmt(self.live)} -> {_fmt(self.wanted)}"

    @property
    def needs_restart(self) -> str | None:
        return RESTART_KEYS.get(self.key)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def effective_mapping(policy: Policy, *, accounting: bool = True) -> dict[str, Any]:
    m = policy_to_mapping(policy)
    m.pop("name", None)
    if m["priority"]["type"] == "basic":
        m["priority"] = {"type": "basic"}
    if m["scheduler"]["type"] == "builtin":
        m["scheduler"] = {"type": "builtin"}
    if not accounting:
        for t in m["tiers"].values():
            t.pop("qos", None)
    return m


def diff_policies(live: Policy, wanted: Policy, *, accounting: bool = True) -> list[Change]:
    """What changes on a cluster running ``live`` when ``wanted`` is applied."""
    a = effective_mapping(live, accounting=accounting)
    b = effective_mapping(wanted, accounting=accounting)
    out: list[Change] = []
    _walk("", a, b, out)
    return out


def _walk(path: str, a: Any, b: Any, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        for k in keys:
            p = f"{path}.{k}" if path else str(k)
            if k not in b:
                out.append(Change(p, a[k], MISSING))
            elif k not in a:
                out.append(Change(p, MISSING, b[k]))
            else:
                _walk(p, a[k], b[k], out)
        if path == "tiers" and list(a) != list(b) and set(a) == set(b):
            out.append(Change("tiers (order)", list(a), list(b)))
        return
    if a != b:
        out.append(Change(path, a, b))


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        inner = ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
        return "{" + inner + "}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
