"""Private files and directories, written safely.

* :func:`private_dir` makes a directory (or tightens an existing one) to ``mode``, refusing a
  symlink or a directory owned by someone else.
* :func:`write_private` writes a file that nobody else can read: created with ``O_EXCL`` and
  ``O_NOFOLLOW`` under a temporary name in the same directory, then renamed over the target,
  so an attacker's symlink or pre-created file at the target (or the temporary name) is never
  followed or written through.
* :func:`read_tail` reads the end of a file someone else controls (a job's log in a user's
  home): never through a symlink, never blocking on a FIFO or device, only a regular file of
  the expected owner, and only its last bytes however large (or sparse) the file is;
  :func:`read_from` reads the same way from an offset on, to follow a growing file.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path


class UnsafePath(OSError):
    """A path that is a symlink, not a directory, or owned by another user."""


class RefusedFile(OSError):
    """A file :func:`read_tail` will not read; the message names the path and says why."""


def private_dir(path: str | os.PathLike[str], mode: int = 0o700) -> Path:
    """``path`` as a directory of ``mode`` owned by us (made with its parents if missing)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=mode)
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{p}: not a plain directory (a symlink or a file)")
    if st.st_uid != os.geteuid():
        raise UnsafePath(f"{p}: owned by uid {st.st_uid}, not by us (uid {os.geteuid()})")
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(p, mode)
    return p


def write_private(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o600) -> Path:
    """Write ``data`` to ``path`` with ``mode`` (default owner-only), atomically."""
    p = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; never widened
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def _read_owned(path: str | os.PathLike[str], span: Callable[[int], tuple[int, int]], uid: int | None,
                owner: str) -> tuple[bytes, int, int] | None:
    """(the bytes ``span(size)`` names as (start, length), start, size) of ``path`` if it is a
    regular file owned by ``uid``; None when it does not exist; else :class:`RefusedFile`."""
    want = os.geteuid() if uid is None else uid
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                     | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RefusedFile(f"{path} is a symbolic link; it is not followed") from None
        raise RefusedFile(f"{path} cannot be read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RefusedFile(f"{path} is not a regular file")
        if st.st_uid != want:
            raise RefusedFile(f"{path} is not owned by {owner}")
        start, length = span(st.st_size)
        return os.pread(fd, length, start), start, st.st_size
    finally:
        os.close(fd)


def read_tail(path: str | os.PathLike[str], max_bytes: int, *, uid: int | None = None,
              owner: str = "you") -> str | None:
    """The last ``max_bytes`` of ``path`` (decoded with replacement; a partial first line
    dropped when the file was cut) if it is a regular file owned by ``uid`` (default: us,
    named ``owner`` in the refusal); None when it does not exist. A symlink, a FIFO or
    device, another owner's file or an unreadable one raises :class:`RefusedFile`."""
    def span(size: int) -> tuple[int, int]:
        start = max(0, size - max(0, max_bytes))
        return start, size - start

    got = _read_owned(path, span, uid, owner)
    if got is None:
        return None
    data, start, _size = got
    text = data.decode("utf-8", errors="replace")
    if start > 0 and "\n" in text[:-1]:  # a partial first line, and whole ones after it
        text = text.split("\n", 1)[1]
    return text


def read_from(path: str | os.PathLike[str], offset: int, max_bytes: int, *, uid: int | None = None,
              owner: str = "you") -> tuple[bytes, int, int] | None:
    """At most ``max_bytes`` of ``path`` from byte ``offset`` (to follow a growing file):
    (the bytes, where they start, the file's size), with the checks of :func:`read_tail`.
    An offset past the end (the file was truncated or replaced) starts again at the last
    ``max_bytes``, as does a negative offset (the first read)."""
    def span(size: int) -> tuple[int, int]:
        start = offset if 0 <= offset <= size else max(0, size - max_bytes)
        return start, max(0, min(max_bytes, size - start))

    return _read_owned(path, span, uid, owner)
