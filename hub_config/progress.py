"""What the hub tells a person about their server job: the pending page's progress events,
the job page and API (:func:`job_info`), and why the last job ended (:func:`end_message`).

All of it is rendered from the shared job view (:func:`sandfill.slurm.jobview.job_view`), the
one vocabulary for Slurm's reasons and for why a job ended -- the same words as the lab panel
and the notebook widget. Nothing here queries Slurm: the spawner passes in what its shared
poller and scheduler view already know.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from html import escape
from typing import Any

from sandfill.slurm.jobview import ended_why, job_view
from sandfill.slurm.states import JobStatus
from sandfill.units import describe_duration, format_duration

LOG_LINES = 15  # lines of the job's log shown when it ended
#: why a server job ended whose start a hub restart dropped (the hub cannot reach it)
DROPPED_WHY = ("the hub restarted while your server was starting and cannot reach it, so the hub "
               "cancelled the job; start a new server")
#: why a server job ended that the user cancelled while it was still waiting in the queue
CANCELLED_BEFORE_START = "cancelled before it started"


def describe_start(start: float | None, now: float | None = None) -> str:
    """Slurm's estimated start in words: the clock time and how long until then."""
    if start is None:
        return "not yet estimated by Slurm"
    left = start - (time.time() if now is None else now)
    clock = time.strftime("%H:%M:%S", time.localtime(start))
    if left <= 0:
        return f"{clock} (as soon as resources free up)"
    return f"{clock} (in {format_duration(int(left))})"


def pending_event(
    job_id: str | None,
    status: JobStatus | None,
    *,
    position: tuple[int, int] | None = None,
    partition: str | None = None,
    port: int = 0,
    asked: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """One progress event describing the job now (``message`` as text, and for a pending job
    ``html_message``: a status card with the job id, state, reason in plain words, position,
    estimated start, what was asked for (``asked``) and how long it has waited, marked)."""
    if not job_id or status is None:
        return {"progress": 10, "message": "Submitting the server job to Slurm…"}
    view = job_view(status, position=position)
    if view.phase == "pending":
        waited = None if status.submit_time is None else (time.time() if now is None else now) - status.submit_time
        return _pending(view.job_id, view.slurm_state, view.reason, view.reason_text, view.position,
                        view.partition or partition or "?", view.estimated_start, asked, waited)
    if view.phase == "running":
        if port:
            return {"progress": 90, "message": f"Job {job_id} running on {view.node}; JupyterLab is starting at port {port}…"}
        return {"progress": 70, "message": f"Job {job_id} is RUNNING on {view.node}; waiting for JupyterLab to report its port…"}
    if view.phase == "unknown":
        return {"progress": 30, "message": f"Job {job_id}: the scheduler is not answering right now (state unknown); still waiting…"}
    return {"progress": 100, "message": f"Job {job_id} ended: {view.ended_why} ({view.slurm_state})."}


def describe_wait(seconds: float | None) -> str | None:
    """How long a job has waited, to the minute (a card that changes once a minute)."""
    if seconds is None:
        return None
    minutes = int(max(0, seconds) // 60)
    return "under a minute" if minutes == 0 else describe_duration(minutes * 60)


def _pending(
    job_id: str, state: str, reason: str | None, words: str | None,
    position: tuple[int, int] | None, partition: str, start: float | None,
    asked: str | None = None, waited: float | None = None,
) -> dict[str, Any]:
    """The pending job as one line of text (the event log) and as a status card (the page)."""
    head = f"Job {job_id} is {state}"
    if reason:
        text = [f"{head} ({reason})" + (f" – {words}" if words and words != reason else "")]
        why = (f'<span class="sandfill-reason-text">{escape(words if words else reason)}</span> '
               f'<small>(Slurm\'s reason: <span class="sandfill-reason" title="{escape(reason)}: {escape(words or reason)}">{escape(reason)}</span>)</small>')
    else:  # Slurm has not said yet (just after submission): say so, invent nothing
        text = [f"{head} (Slurm has not given a reason yet)"]
        why = '<span class="sandfill-reason-text">Slurm has not given a reason yet</span>'
    rows = [
        ("job", f'Job <b class="sandfill-job-id">{escape(job_id)}</b> is <span class="sandfill-state">{escape(state)}</span>'),
        ("why", f"Waiting because: {why}"),
    ]
    if position is not None:
        text.append(f"position {position[0]} of {position[1]} pending in {partition}")
        rows.append(("position", f'Queue position: <span class="sandfill-position">{position[0]} of {position[1]}</span> pending in {escape(partition)}'))
    when = describe_start(start)
    text.append(f"estimated start: {when}")
    rows.append(("start", f'Estimated start: <span class="sandfill-start">{escape(when)}</span>'))
    if asked:
        rows.append(("asked", f'Asked for: <span class="sandfill-asked">{escape(asked)}</span>'))
    if (wait := describe_wait(waited)) is not None:
        rows.append(("waited", f'Waited so far: <span class="sandfill-waited">{escape(wait)}</span>'))
    html = "".join(f'<div class="sandfill-status-{key}">{row}</div>' for key, row in rows)
    return {"progress": 30, "message": " · ".join(text), "html_message": f'<div class="sandfill-status text-start">{html}</div>'}


def end_record(status: JobStatus, *, by_hub: bool, log_path: str, log_tail: str, before_start: bool = False) -> dict[str, Any]:
    """How a job ended, kept in the spawner's state (``last_end``) across stops. A request
    cancelled while it waited (``before_start``) says so, without the stale pending reason."""
    view = job_view(status)
    return {
        "job_id": status.job_id,
        "state": status.state,
        "reason": None if before_start else status.reason,
        "exit_code": status.exit_code,
        "why": CANCELLED_BEFORE_START if before_start else (view.ended_why or ended_why(status.state)),
        "ended": time.time(),
        "stopped_by_hub": by_hub,
        "log_path": log_path,
        "log_tail": log_tail,
    }


def dropped_record(job_id: str) -> dict[str, Any]:
    """The end of a server job whose start a hub restart dropped: the hub cancels it."""
    return {
        "job_id": job_id,
        "state": "CANCELLED",
        "reason": None,
        "exit_code": None,
        "why": DROPPED_WHY,
        "ended": time.time(),
        "stopped_by_hub": True,
        "log_path": "",
        "log_tail": "",
    }


def end_message(last_end: Mapping[str, Any] | None) -> str:
    """Why the last job ended, in the shared vocabulary, with the tail of its log."""
    e = last_end
    if not e:
        return "The server job ended."
    why = e.get("why") or ended_why(e["state"])
    msg = f"Slurm job {e['job_id']} ended: {why} ({e['state']}"
    if e.get("reason"):
        msg += f", {e['reason']}"
    if e.get("exit_code"):
        msg += f", exit code {e['exit_code']}"
    msg += ")."
    if e.get("log_tail"):
        lines = e["log_tail"].rstrip().splitlines()[-LOG_LINES:]
        msg += "\nLast lines of the job's log:\n" + "\n".join(lines)
    return msg


def job_info(
    job_id: str | None,
    status: JobStatus | None,
    *,
    request: Mapping[str, Any] | None,
    last_end: Mapping[str, Any] | None,
    walltime_warning: int,
) -> dict[str, Any]:
    """The current job for the hub page and API (from the cached status; no query).

    The flat keys (``state``, ``reason``, ``nodes``, ``time_left``, ...) are the page's and
    the API's; ``view`` is the shared job view, field for field."""
    view = job_view(status) if status is not None else None
    info: dict[str, Any] = {
        "job_id": job_id or None,
        "state": view.slurm_state if view else None,
        "phase": view.phase if view else None,
        "reason": status.reason if status else None,
        "reason_text": view.reason_text if view else None,
        "partition": view.partition if view else None,
        "nodes": view.node if view else None,
        "time_left": view.time_left if view else None,
        "end_time": status.end_time if status else None,
        "request": dict(request) if request else None,
        "last_end": dict(last_end) if last_end else None,
        "walltime_warning": walltime_warning,
        "view": view.as_dict() if view else None,
    }
    if view is not None and view.phase == "pending":
        info["estimated_start"] = view.estimated_start
    return info
