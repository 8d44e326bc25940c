"""Parsers for the text that Slurm 22.05's commands print (tested against real output)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

# squeue -o fields, in order; the job name comes last because it may contain the separator.
SQUEUE_FIELDS = ("%i", "%T", "%r", "%N", "%S", "%e", "%l", "%P", "%q", "%u", "%V", "%B", "%j")
SQUEUE_FORMAT = "|".join(SQUEUE_FIELDS)

PENDING_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
ACTIVE_STATES = frozenset({"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"})
ENDED_STATES = frozenset(
    {
        "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
        "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT",
    }
)
UNKNOWN = "UNKNOWN"  # the query failed: we do not know; never read as "ended"
GONE = "GONE"  # the controller answered and no longer knows the job; no accounting record


def parse_duration(text: str) -> int | None:
    """Slurm time limit text → seconds. ``[D-]HH:MM:SS``, ``MM:SS``, ``MM``; None for
    UNLIMITED/NOT_SET/N/A."""
    text = text.strip()
    if not text or text.upper() in {"UNLIMITED", "NOT_SET", "N/A", "INVALID", "PARTITION_LIMIT"}:
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        while len(parts) < 3:
            parts.append(0)  # D-HH, D-HH:MM
        h, m, s = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts
    return ((days * 24 + h) * 60 + m) * 60 + s


def format_duration(seconds: float) -> str:
    """Seconds → Slurm's ``[D-]HH:MM:SS`` (rounded down to whole seconds)."""
    seconds = max(0, int(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def parse_timestamp(text: str) -> float | None:
    """Slurm's local ``YYYY-MM-DDTHH:MM:SS`` → epoch seconds; None for N/A/Unknown/None."""
    text = text.strip()
    if not text or not text[0].isdigit():
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


@dataclass(frozen=True)
class JobStatus:
    """What the queue says about one job at ``observed`` (epoch seconds)."""

    job_id: str
    state: str
    reason: str | None = None
    nodes: str | None = None
    start_time: float | None = None  # actual start (running) or estimate (pending)
    end_time: float | None = None  # when the time limit kills it (running)
    time_limit: int | None = None  # seconds
    partition: str | None = None
    qos: str | None = None
    user: str | None = None
    submit_time: float | None = None
    exec_host: str | None = None
    name: str | None = None
    observed: float = field(default_factory=time.time)
    exit_code: str | None = None

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def running(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES or self.state == GONE

    @property
    def known(self) -> bool:
        return self.state != UNKNOWN

    def time_left(self, now: float | None = None) -> float | None:
        if not self.running or self.end_time is None:
            return None
        return max(0.0, self.end_time - (time.time() if now is None else now))

    def as_unknown(self) -> JobStatus:
        """The same job after a failed query: last facts kept, state UNKNOWN."""
        return replace(self, state=UNKNOWN)


def _none(text: str) -> str | None:
    text = text.strip()
    return None if text in {"", "(null)", "N/A", "None", "n/a"} else text


def parse_squeue(stdout: str, observed: float | None = None) -> dict[str, JobStatus]:
    """Parse ``squeue -h -o SQUEUE_FORMAT`` output into statuses keyed by job id."""
    now = time.time() if observed is None else observed
    out: dict[str, JobStatus] = {}
    n = len(SQUEUE_FIELDS)
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", n - 1)
        if len(parts) != n:
            raise ValueError(f"unexpected squeue line ({len(parts)} fields, want {n}): {line!r}")
        jid, state, reason, nodes, start, end, limit, part, qos, user, submit, host, name = parts
        state = state.strip().split()[0].rstrip("+") if state.strip() else UNKNOWN
        reason_s = _none(reason)
        if reason_s is not None:
            reason_s = reason_s.strip("()")
            if reason_s == "None":
                reason_s = None
        out[jid.strip()] = JobStatus(
            job_id=jid.strip(),
            state=state,
            reason=reason_s,
            nodes=_none(nodes),
            start_time=parse_timestamp(start),
            end_time=parse_timestamp(end),
            time_limit=parse_duration(limit),
            partition=_none(part),
            qos=_none(qos),
            user=_none(user),
            submit_time=parse_timestamp(submit),
            exec_host=_none(host),
            name=name,
            observed=now,
        )
    return out


SACCT_FIELDS = ("JobID", "State", "ExitCode", "Start", "End", "NodeList", "Partition", "QOS", "User", "Reason")


def parse_sacct_final(stdout: str, observed: float | None = None) -> dict[str, JobStatus]:
    """Parse ``sacct -X -n -P -o <SACCT_FIELDS>`` into final statuses (allocations only)."""
    now = time.time() if observed is None else observed
    out: dict[str, JobStatus] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < len(SACCT_FIELDS):
            continue
        jid, state, exit_code, start, end, nodes, part, qos, user, reason = parts[: len(SACCT_FIELDS)]
        state = state.split()[0] if state else UNKNOWN  # "CANCELLED by 0"
        out[jid] = JobStatus(
            job_id=jid,
            state=state,
            reason=_none(reason),
            nodes=_none(nodes if nodes != "None assigned" else ""),
            start_time=parse_timestamp(start),
            end_time=parse_timestamp(end),
            partition=_none(part),
            qos=_none(qos),
            user=_none(user),
            exit_code=exit_code or None,
            observed=now,
        )
    return out


_TEST_ONLY = re.compile(
    r"Job (?P<job>\d+) to start at (?P<start>\S+) using (?P<cpus>\d+) processors on nodes (?P<nodes>\S+)(?: in partition (?P<part>\S+))?"
)


@dataclass(frozen=True)
class TestOnlyAnswer:
    __test__ = False  # not a pytest class

    start_time: float
    cpus: int
    nodes: str
    partition: str | None


def parse_test_only(text: str) -> TestOnlyAnswer | None:
    """``sbatch --test-only`` prints (on stderr) ``sbatch: Job 12 to start at
    2026-11-21T09:00:00 using 1 processors on nodes node1 in partition burst``."""
    m = _TEST_ONLY.search(text)
    if not m:
        return None
    start = parse_timestamp(m.group("start"))
    if start is None:
        return None
    return TestOnlyAnswer(start, int(m.group("cpus")), m.group("nodes"), m.group("part"))


_SDIAG_RPC = re.compile(r"^\s*(?P<name>[A-Z_]+)\s+\(\s*\d+\)\s+count:(?P<count>\d+)")


def parse_sdiag_rpcs(text: str) -> dict[str, int]:
    """RPC counts by message type from ``sdiag`` output."""
    counts: dict[str, int] = {}
    section = False
    for line in text.splitlines():
        if line.startswith("Remote Procedure Call statistics by message type"):
            section = True
            continue
        if line.startswith("Remote Procedure Call statistics by user"):
            break
        if section:
            m = _SDIAG_RPC.match(line)
            if m:
                counts[m.group("name")] = int(m.group("count"))
    return counts


QUEUE_RPCS = ("REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE", "REQUEST_JOB_USER_INFO")


def queue_rpcs(counts: dict[str, int]) -> int:
    """How many of ``counts`` are queue queries (one squeue = one of these)."""
    return sum(counts.get(k, 0) for k in QUEUE_RPCS)


def parse_sinfo_nodes(stdout: str) -> list[dict[str, str | int]]:
    """Parse ``sinfo -h -N -o '%N|%P|%t|%C|%m'`` (CPUs as alloc/idle/other/total)."""
    rows: list[dict[str, str | int]] = []
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 5:
            continue
        node, part, state, cpus, mem = parts[:5]
        a, i, o, t = (int(x) for x in cpus.split("/"))
        rows.append(
            {"node": node, "partition": part.rstrip("*"), "state": state, "alloc": a, "idle": i, "other": o, "total": t, "memory": mem}
        )
    return rows


def expand_hostlist(expr: str) -> list[str]:
    """Expand Slurm's host list syntax: ``node[1-3,7],gpu[01-02]`` → names."""
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        j = i
        depth = 0
        while j < n and (expr[j] != "," or depth):
            depth += expr[j] == "["
            depth -= expr[j] == "]"
            j += 1
        part = expr[i:j]
        i = j + 1
        if not part:
            continue
        m = re.match(r"^(?P<pre>[^\[]*)\[(?P<rng>[^\]]+)\](?P<post>.*)$", part)
        if not m:
            out.append(part)
            continue
        for r in m.group("rng").split(","):
            lo, _, hi = r.partition("-")
            width = len(lo)
            for k in range(int(lo), int(hi or lo) + 1):
                out.extend(f"{m.group('pre')}{k:0{width}d}{rest}" for rest in expand_hostlist(m.group("post")) or [""])
    return out
