"""Per-tier node sets in the simulator: a tier's jobs only use its partition's nodes.

Only policies with a node set take this path (:func:`build_pools` returns None otherwise, and
the engine of :mod:`sandfill.policies.sim.backfill` runs unchanged). The machine is split into
*groups*: nodes that belong to the same restricted sets. Each group has its own free units;
a tier's job may take units from the groups of its set, least shared first (a tier without a
set prefers nodes no set restricts, as a site's node ``Weight`` would steer it); a job keeps
the groups it started on until it ends. Units within a group are pooled, as in the main
model (no placement inside a group).

Passes, as Slurm's:

* :func:`pools_main_pass`: jobs in priority order; a job that does not fit takes its
  partition's nodes away from every later job (Slurm's main scheduler), so a blocked GPU job
  does not stop CPU jobs on other nodes; the pass ends when every group is blocked;
* :func:`pools_backfill_pass`: per-group availability curves; a job starts now or is
  reserved at the earliest time its set's groups hold its units for its whole plan (each
  group's least free units over that span, summed), conservative or EASY, with QOS holds,
  ``bf_max_job_test``, ``bf_max_job_user`` and ``bf_max_job_start``.

Not modelled with node sets: preemption (refused by :func:`build_pools`), floor reservations
and whole-node reservations of ``alloc="cpu"``; unlike nodes all count ``cpus_per_node``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandfill.policies.document.model import MachineNode, Policy
from sandfill.policies.document.nodesets import resolve
from sandfill.policies.sim.availability import Availability
from sandfill.policies.sim.backfill import (
    BackfillMode,
    Decisions,
    Reservation,
    Start,
    _QosLedger,
    _user_full,
)

if TYPE_CHECKING:
    from sandfill.policies.sim.simulator import SimConfig, Simulator

Alloc = list[tuple[int, int]]  # (group, units)


@dataclass
class Pools:
    """Groups of nodes with their free units, each tier's groups, each running job's share."""

    sizes: list[int]
    free: list[int]
    tier_groups: list[list[int]]  # per tier: its set's groups, in the order jobs take them
    tier_units: list[int]  # per tier: units of its set
    alloc: dict[int, Alloc] = field(default_factory=dict)  # running job -> its groups' units
    planned: dict[int, Alloc] = field(default_factory=dict)  # decided by a pass, not yet started

    def take(self, j: int, tier: int, units: int) -> None:
        """Job ``j`` starts: on what the pass planned for it, else the first groups free."""
        alloc = self.planned.pop(j, None) or greedy(self.free, self.tier_groups[tier], units)
        if alloc is None or sum(u for _, u in alloc) != units:
            raise AssertionError(f"job {j}: its tier's nodes have no {units} units free")
        for g, u in alloc:
            if self.free[g] < u:
                raise AssertionError(f"job {j}: group {g} over-committed")
            self.free[g] -= u
        self.alloc[j] = alloc

    def give_back(self, j: int) -> None:
        for g, u in self.alloc.pop(j, ()):
            self.free[g] += u


def greedy(free: Sequence[int], groups: Sequence[int], units: int) -> Alloc | None:
    """``units`` from ``groups`` in order (each up to its ``free``), or None if they lack it."""
    out: Alloc = []
    need = units
    for g in groups:
        if need <= 0:
            break
        u = min(free[g], need)
        if u > 0:
            out.append((g, u))
            need -= u
    return out if need <= 0 else None


def build_pools(policy: Policy, config: SimConfig) -> Pools | None:
    """The groups of ``config``'s machine for ``policy``'s node sets (None: no tier has one).
    ValueError naming the tier when a set matches no node of the machine, naming the
    machine when it does not have ``config.nodes`` nodes, and for preemption."""
    if all(t.nodes is None for t in policy.tiers):
        return None
    if policy.preemption.type != "none" and any(t.preemptable for t in policy.tiers):
        raise ValueError("the simulator does not model preemption together with node sets")
    machine = config.machine or tuple(MachineNode(f"node{i}") for i in range(1, config.nodes + 1))
    if len(machine) != config.nodes:
        raise ValueError(f"the machine lists {len(machine)} nodes, not the {config.nodes} simulated")
    names = [n.name for n in machine]
    sets: list[frozenset[str] | None] = []
    for t in policy.tiers:
        chosen = frozenset(resolve(t.nodes, machine)) if t.nodes is not None else None
        if chosen is not None and not chosen:
            raise ValueError(f"tier {t.name!r}: {t.nodes.describe()} matches none of the "  # type: ignore[union-attr]
                             f"simulated machine's nodes ({', '.join(names)})")
        sets.append(chosen)
    restricted = list(dict.fromkeys(s for s in sets if s is not None))
    signature = {n: tuple(i for i, s in enumerate(restricted) if n in s) for n in names}
    order = sorted(dict.fromkeys(signature[n] for n in names), key=len)  # least shared first
    per_node = 1 if config.alloc == "node" else config.cpus_per_node
    sizes = [per_node * sum(1 for n in names if signature[n] == sig) for sig in order]
    tier_groups = [[g for g, sig in enumerate(order) if s is None or restricted.index(s) in sig]
                   for s in sets]
    return Pools(sizes, sizes[:], tier_groups, [sum(sizes[g] for g in gs) for gs in tier_groups])


def pools_main_pass(sim: Simulator) -> Decisions:
    """Slurm's main scheduler over the groups (see the module docstring)."""
    d = Decisions()
    pools = sim.pools
    assert pools is not None
    free = pools.free[:]
    open_ = [True] * len(free)
    ledger = _QosLedger(sim)
    for j in sim.ordered_queue():
        reason = ledger.blocked(j)
        if reason is not None:
            d.held.append((j, reason))
            continue
        groups = [g for g in pools.tier_groups[sim.job_tier[j]] if open_[g]]
        alloc = greedy(free, groups, sim.job_units[j])
        if alloc is not None:
            for g, u in alloc:
                free[g] -= u
            pools.planned[j] = alloc
            ledger.add(j)
            d.starts.append(Start(j, sim.job_limit[j], "main"))
            continue
        for g in pools.tier_groups[sim.job_tier[j]]:  # its partition's nodes: not for later jobs
            open_[g] = False
        if not any(open_):
            break
    return d


def _profiles(sim: Simulator, pools: Pools) -> list[Availability]:
    res = sim.backfill.resolution
    ends: list[list[tuple[int, int]]] = [[] for _ in pools.sizes]
    for r in sim.running:
        end = -(-sim.planned_end[r] // res) * res
        for g, u in pools.alloc[r]:
            ends[g].append((end, u))
    return [Availability(sim.now, size, pools.free[g], ends[g]) for g, size in enumerate(pools.sizes)]


def _least(prof: Availability, start: int, end: int) -> int:
    """The fewest units ``prof`` has free during [start, end)."""
    i = max(0, bisect_left(prof.times, start + 1) - 1)
    k = bisect_left(prof.times, end)
    return min(prof.free[i:max(k, i + 1)])


def _earliest(profs: list[Availability], groups: list[int], units: int, plan: int,
              latest: int) -> tuple[int, Alloc] | None:
    """The earliest start (≤ ``latest``) at which ``groups`` hold ``units`` for ``plan``
    seconds, each group what it has free throughout, and how they share it."""
    times = sorted({t for g in groups for t in profs[g].times})
    for s in times:
        if s > latest:
            return None
        least = [0] * len(profs)
        for g in groups:
            least[g] = _least(profs[g], s, s + plan)
        alloc = greedy(least, groups, units)
        if alloc is not None:
            return s, alloc
    return None


def pools_backfill_pass(sim: Simulator, mode: BackfillMode, *, record: bool = False) -> Decisions:
    """Slurm's backfill over per-group curves (see the module docstring)."""
    d = Decisions()
    pools = sim.pools
    assert pools is not None
    if mode == "none" or not sim.pending_key:
        return d
    bf, now = sim.backfill, sim.now
    latest = now + bf.window.seconds
    profs = _profiles(sim, pools)
    ledger = _QosLedger(sim)
    tested = started = 0
    per_user: dict[str, int] = {}
    reserved_one = False
    for j in sim.ordered_queue():
        if tested >= bf.max_job_test:
            break
        if bf.max_job_user and _user_full(per_user, sim.job_user[j], bf.max_job_user):
            continue
        tested += 1
        reason = ledger.blocked(j)
        if reason is not None:
            d.held.append((j, reason))
            continue
        if mode == "easy" and reserved_one and not _fits_now(profs, pools, sim, j):
            continue
        plan = sim.job_plan[j]
        found = _earliest(profs, pools.tier_groups[sim.job_tier[j]], sim.job_units[j], plan, latest)
        if found is None:
            continue
        start, alloc = found
        for g, u in alloc:
            profs[g].reserve(start, start + plan, u)
        if start == now:
            pools.planned[j] = alloc
            ledger.add(j)
            d.starts.append(Start(j, sim.job_dur[j], "backfill"))
            started += 1
            if bf.max_job_start and started >= bf.max_job_start:
                break
            continue
        reserved_one = True
        if record:
            d.reservations.append(Reservation(j, start, start + plan, sim.job_units[j]))
    return d


def _fits_now(profs: list[Availability], pools: Pools, sim: Simulator, j: int) -> bool:
    groups = pools.tier_groups[sim.job_tier[j]]
    least = [0] * len(profs)
    for g in groups:
        least[g] = _least(profs[g], sim.now, sim.now + sim.job_plan[j])
    return greedy(least, groups, sim.job_units[j]) is not None
