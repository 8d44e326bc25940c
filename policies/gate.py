"""The simulation gate before ``sandfill policy apply``: the new policy's simulated effect
against the live policy on the site's own recent history (``sacct``), then a confirmation.

The history is the allocations that ran in the last ``days`` days (:func:`read_history`);
both policies replay the same jobs on the live cluster's shape (CPUs, as Slurm's
``cons_tres`` allocates them), each job in the tier of the partition it was submitted to
when the policy has one, else the tier the policy maps its request to
(:func:`simulate_history`). The table (:func:`effect_table`) shows per-tier median and p95
wait, all jobs' max wait, utilization and rejected jobs, with the change. The question
(:func:`confirmation`) is asked only on a terminal; without one, ``--yes`` is required.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandfill.policies.document.model import ClusterShape, Policy
from sandfill.policies.sim.metrics import ClassStats, Metrics, human_seconds, summarize
from sandfill.policies.sim.sacct import workload_from_sacct_text
from sandfill.policies.sim.simulator import SimConfig, SimResult, simulate
from sandfill.policies.sim.workload import Workload
from sandfill.slurm.commands import Runner, SlurmCommandError
from sandfill.slurm.sacct import history_argv


class HistoryUnavailable(RuntimeError):
    """``sacct`` could not be read (slurmdbd down, accounting off): the message says why."""


def window(days: int) -> str:
    """``sacct --starttime`` for the last ``days`` days; ValueError names a bad value."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"the history window must be a whole number of days >= 1, not {days!r}")
    return f"now-{days}days"


def read_history(runner: Runner, days: int) -> Workload:
    """The jobs that ran in the last ``days`` days on the cluster ``runner`` talks to."""
    argv = history_argv(window(days))
    try:
        text = runner(argv).checked().stdout
    except SlurmCommandError as exc:
        raise HistoryUnavailable(f"cannot read the accounting history (`{' '.join(argv)}`): "
                                 f"{exc}") from None
    return workload_from_sacct_text(text, f"sacct, last {days} day(s)")


def simulate_history(policy: Policy, workload: Workload, shape: ClusterShape) -> SimResult:
    """Replay the site's own jobs under ``policy`` on the cluster's shape (see module)."""
    cfg = SimConfig(nodes=shape.nodes, cpus_per_node=shape.cpus_per_node, alloc="cpu",
                    use_trace_partitions=True, machine=shape.machine)
    return simulate(policy, workload, cfg)


@dataclass(frozen=True)
class Effect:
    """What the simulator says the new policy does to the recent history."""

    days: int
    jobs: int
    new: Metrics
    live: Metrics | None  # None: the live settings are not a valid policy

    @property
    def note(self) -> str:
        """The history record's line for this simulation."""
        return f"simulated on {self.jobs} job(s) of the last {self.days} day(s)"


def simulated_effect(live: Policy | None, new: Policy, workload: Workload, shape: ClusterShape,
                     days: int) -> Effect | None:
    """Both policies on the same jobs; None when no job ran in the window."""
    if not workload.jobs:
        return None
    new_m = summarize(simulate_history(new, workload, shape))
    live_m = summarize(simulate_history(live, workload, shape)) if live is not None else None
    return Effect(days, len(workload.jobs), new_m, live_m)


def _tiers(m: Metrics | None) -> list[str]:
    return [c.name for c in m.classes if c.name.startswith("tier:") and c.jobs] if m else []


def _wait(c: ClassStats | None, field: str) -> float | None:
    return None if c is None or not c.jobs else float(getattr(c, field))


def _delta(a: float | None, b: float | None, kind: str) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    if kind == "util":
        return "=" if abs(d) < 0.0005 else f"{d * 100:+.1f} pp"
    if kind == "count":
        return "=" if d == 0 else f"{d:+.0f}"
    return "=" if d == 0 else ("+" if d > 0 else "-") + human_seconds(abs(d))


def _cell(v: float | None, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "util":
        return f"{v:.1%}"
    return f"{v:.0f}" if kind == "count" else human_seconds(v)


def effect_rows(e: Effect) -> list[tuple[str, str, str, str]]:
    """``(what, live, new, change)`` rows: per tier median/p95 wait, all jobs, utilization."""
    live_c = e.live.by_name() if e.live else {}
    new_c = e.new.by_name()
    rows: list[tuple[str, str, str, str]] = []
    tiers = _tiers(e.live) + [t for t in _tiers(e.new) if t not in _tiers(e.live)]
    for name in ["all", *tiers]:
        a, b = live_c.get(name), new_c.get(name)
        fields = (("jobs", "count"), ("median_wait", "s"), ("p95_wait", "s"))
        fields += (("max_wait", "s"),) if name == "all" else ()
        for f, kind in fields:
            va, vb = _wait(a, f), _wait(b, f)
            rows.append((f"{name} {f.replace('_wait', ' wait')}", _cell(va, kind), _cell(vb, kind),
                         _delta(va, vb, kind)))
    ua, ub = (e.live.utilization if e.live else None), e.new.utilization
    rows.append(("utilization", _cell(ua, "util"), _cell(ub, "util"), _delta(ua, ub, "util")))
    ra, rb = (float(e.live.rejected) if e.live else None), float(e.new.rejected)
    rows.append(("rejected (no tier admits)", _cell(ra, "count"), _cell(rb, "count"),
                 _delta(ra, rb, "count")))
    return rows


def effect_table(e: Effect) -> str:
    """The rows of :func:`effect_rows` as an aligned text table with a heading line."""
    live = e.live.policy if e.live else "live (not a valid policy)"
    head = ("", f"live: {live}", f"new: {e.new.policy}", "change")
    rows = [head, *effect_rows(e)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"simulated effect on the last {e.days} day(s) of this cluster's jobs ({e.jobs}):\n" \
        + "\n".join(lines)


def confirmation(*, yes: bool, tty: bool, ask: Callable[[str], str]) -> str | None:
    """None to go on; else why not (nothing has been changed). ``ask`` shows the question
    and returns the answer; it is called only on a terminal and without ``yes``."""
    if yes:
        return None
    if not tty:
        return ("confirmation needed and stdin is not a terminal: give --yes to apply "
                "without the question")
    try:
        answer = ask("apply this policy? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return None
    return f"not confirmed (answer {answer.strip()!r})"
