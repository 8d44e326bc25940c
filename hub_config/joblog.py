"""Read the tail of a user's job log safely from the (root) hub.

The log lives in the user's home, which the user controls: it could be replaced by a
symlink to a file only root may read, a FIFO (an open or a read that never returns), or a
huge sparse file. We open it without following symlinks and without blocking, read only a
regular file owned by that user, and only its last ``max_bytes``. A home on a hung network
filesystem or a slow name service must not freeze the hub: :func:`tail_log` runs the lookup
and the read in a small thread pool of its own, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import pwd
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sandfill.files import RefusedFile, read_tail

T = TypeVar("T")

#: a few threads of their own: reads stuck on a hung filesystem cannot starve the hub's pool
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandfill-joblog")
MAX_TAIL_BYTES = 1 << 20  # never more than 1 MiB, whatever the setting says


class LogRefused(OSError):
    """The log path is not something the hub will read for the user; the message says why."""


@dataclass(frozen=True)
class LogTail:
    """The tail of a job's log (``text``), or why there is none (``error``)."""

    text: str | None = None
    error: str | None = None


def _uid(username: str) -> int:
    try:
        return pwd.getpwnam(username).pw_uid
    except KeyError:
        raise LogRefused(f"user {username!r} has no account on this machine") from None


def read_log_tail(path: str, username: str, max_bytes: int = 8192) -> str | None:
    """The last ``max_bytes`` (at most :data:`MAX_TAIL_BYTES`) of ``path`` if it is a regular
    file owned by ``username``; None when it does not exist. Anything else (a symlink, a
    FIFO or device, another owner's file) raises :class:`LogRefused` naming the path."""
    uid = _uid(username)
    try:
        return read_tail(path, max(0, min(max_bytes, MAX_TAIL_BYTES)), uid=uid, owner=username)
    except RefusedFile as exc:
        raise LogRefused(f"{exc}; the hub does not read it") from None


async def off_loop(what: str, fn: Callable[..., T], *args: Any, timeout: float = 5.0) -> T:
    """``fn(*args)`` in the log reader's thread pool, bounded: :class:`TimeoutError` naming
    ``what`` when it takes longer than ``timeout`` seconds (a hung filesystem, a slow name
    service); the hub's loop goes on meanwhile."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_POOL, fn, *args), timeout)
    except TimeoutError:
        raise TimeoutError(f"{what} took longer than {timeout:g} s") from None


async def tail_log(path: str, username: str, max_bytes: int = 8192, timeout: float = 5.0) -> LogTail:
    """:func:`read_log_tail` off the event loop, bounded by ``timeout`` seconds."""
    if not path:
        return LogTail()
    try:
        text = await off_loop(f"reading {path}", read_log_tail, path, username, max_bytes, timeout=timeout)
    except (LogRefused, TimeoutError) as exc:
        return LogTail(error=str(exc))
    return LogTail(text=text)
