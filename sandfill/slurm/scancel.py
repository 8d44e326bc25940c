"""``scancel``: cancel or signal jobs."""

from __future__ import annotations

from collections.abc import Iterable

from sandfill.slurm.states import check_job_ids, check_users


def cancel_argv(job_ids: Iterable[str], signal: str | None = None) -> list[str]:
    """Cancel ``job_ids`` (or send them ``signal``, e.g. ``"USR1"``)."""
    return ["scancel", *([f"--signal={signal}"] if signal is not None else []), *check_job_ids(job_ids)]


def cancel_user_argv(user: str) -> list[str]:
    """Cancel every job of ``user`` (ValueError when it is not a plain user name)."""
    return ["scancel", "-u", *check_users([user])]
