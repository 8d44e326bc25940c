"""Job states as Slurm reports them, and what sandfill knows about one job (:class:`JobStatus`)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

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


def none_if_empty(text: str) -> str | None:
    text = text.strip()
    return None if text in {"", "(null)", "N/A", "None", "n/a"} else text

_JOB_ID = re.compile(r"\d+(_\d+)?")


def check_job_id(job_id: str) -> str:
    """``job_id`` stripped, or ValueError when it is not a Slurm job id (``123``, ``123_4``)."""
    job_id = str(job_id).strip()
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a Slurm job id: {job_id!r}")
    return job_id


def check_job_ids(job_ids: Iterable[str]) -> list[str]:
    """:func:`check_job_id` for each, deduplicated, in numeric order."""
    return sorted({check_job_id(j) for j in job_ids}, key=lambda s: (len(s), s))


_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_node_name(node: str) -> str:
    """``node`` stripped, or ValueError when it is not one plain node name (``node1``, not
    a host list or an option)."""
    node = str(node).strip()
    if not _NODE.fullmatch(node):
        raise ValueError(f"not a node name: {node!r}")
    return node


# a plain Unix user name (what useradd accepts by default): the one rule for user names
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


def is_user_name(user: str) -> bool:
    """Whether ``user`` is a plain Unix user name (safe to pass to a Slurm command)."""
    return isinstance(user, str) and USER_NAME.fullmatch(user) is not None


def check_users(users: Iterable[str]) -> list[str]:
    """``users``, or ValueError when there are none or one is not a plain user name."""
    out = [str(u) for u in users]
    bad = [u for u in out if not is_user_name(u)]
    if bad or not out:
        raise ValueError(f"not a user name: {bad[0]!r}" if bad else "no user names")
    return out


def state_word(text: str) -> str:
    """A state column (``RUNNING``, ``CANCELLED+``, ``CANCELLED by 0``) → the state word;
    UNKNOWN when empty or not a state word (bytes that were not UTF-8, say)."""
    words = text.split()
    word = words[0].rstrip("+") if words else ""
    return word if _STATE_WORD.fullmatch(word) else UNKNOWN


_STATE_WORD = re.compile(r"[A-Z][A-Z_]{0,31}")
