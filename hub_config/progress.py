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
from sandfill.units import format_duration

LOG_LINES = 15  # lines of the job's log shown when it ended
#: why a server job ended whose start a hub restart dropped (the hub cannot reach it)
DROPPED_WHY = ("the hub restarted while your server was starting and cannot reach it, so the hub "
               "cancelled the job; start a new server")


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
) -> dict[str, Any]:
    """One progress event describing the job now (``message`` as text, and for a pending job
    ``html_message`` with the job id, state, reason, position and estimated start marked)."""
    if not job_id or status is None:
        return {"progress": 10, "message": "Submitting the server job to Slurm…"}
    view = job_view(status, position=position)
    if view.phase == "pending":
        return _pending(view.job_id, view.slurm_state, view.reason, view.reason_text, view.position,
                        view.partition or partition or "?", view.estimated_start)
    if view.phase == "running":
        if port:
            return {"progress": 90, "message": f"Job {job_id} running on {view.node}; JupyterLab is starting at port {port}…"}
        return {"progress": 70, "message": f"Job {job_id} is RUNNING on {view.node}; waiting for JupyterLab to report its port…"}
    if view.phase == "unknown":
        return {"progress": 30, "message": f"Job {job_id}: the scheduler is not answering right now (state unknown); still waiting…"}
    return {"progress": 100, "message": f"Job {job_id} ended: {view.ended_why} ({view.slurm_state})."}


def _pending(
    job_id: str, state: str, reason: str | None, words: str | None,
    position: tuple[int, int] | None, partition: str, start: float | None,
) -> dict[str, Any]:
    code = reason or "waiting"
    plain = f"{code}: {words}" if words and words != code else code
    text = [f"Job {job_id} is {state} ({code})"]
    html = [
        f'Job <b class="sandfill-job-id">{escape(job_id)}</b> is '
        f'<span class="sandfill-state">{escape(state)}</span> '
        f'(reason: <span class="sandfill-reason" title="{escape(plain)}">{escape(code)}</span>)'
    ]
    if words and words != code:
        text[0] += f" – {words}"
        html[0] += f' – <span class="sandfill-reason-text">{escape(words)}</span>'
    if position is not None:
        text.append(f"position {position[0]} of {position[1]} pending in {partition}")
        html.append(f'position <span class="sandfill-position">{position[0]} of {position[1]}</span> pending in {escape(partition)}')
    when = describe_start(start)
    text.append(f"estimated start: {when}")
    html.append(f'estimated start: <span class="sandfill-start">{escape(when)}</span>')
    return {"progress": 30, "message": " · ".join(text), "html_message": " · ".join(html)}


def end_record(status: JobStatus, *, by_hub: bool, log_path: str, log_tail: str) -> dict[str, Any]:
    """How a job ended, kept in the spawner's state (``last_end``) across stops."""
    view = job_view(status)
    return {
        "job_id": status.job_id,
        "state": status.state,
        "reason": status.reason,
        "exit_code": status.exit_code,
        "why": view.ended_why or ended_why(status.state),
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
