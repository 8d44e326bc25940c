"""Start, watch and stop the devcluster's daemons: only the ones we started, by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sandfill.slurm.commands import WaitTimeout, wait_until


class DaemonError(RuntimeError):
    """A daemon failed to start or to become ready; carries its log tail."""


@dataclass(frozen=True)
class Daemon:
    name: str
    pid: int
    argv: tuple[str, ...]
    log: str
    start_time: float  # /proc start time (clock ticks since boot) to detect PID reuse


def proc_start_time(pid: int) -> float | None:
    """The process start time from /proc (None when the process does not exist)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = raw.rsplit(")", 1)[1].split()
    return float(fields[19])


def is_alive(d: Daemon) -> bool:
    st = proc_start_time(d.pid)
    if st is None or st != d.start_time:
        return False
    try:
        state = Path(f"/proc/{d.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def log_tail(path: str | os.PathLike[str], lines: int = 20) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def start(
    name: str,
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Daemon:
    """Start ``argv`` detached in its own session, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            close_fds=True,
        )
    st = proc_start_time(proc.pid)
    # The Popen object is dropped on purpose: the daemon outlives this process. Reap it if it
    # dies while we are still here so that is_alive() sees it gone rather than a zombie.
    _children[proc.pid] = proc
    return Daemon(name, proc.pid, tuple(argv), str(log), st if st is not None else -1.0)


_children: dict[int, subprocess.Popen[bytes]] = {}


def reap() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


def wait_ready(what: str, check: Callable[[], object], timeout: float, daemon: Daemon | None = None) -> None:
    """Poll ``check`` until true (:func:`sandfill.slurm.commands.wait_until`); fail early if
    ``daemon`` died, and on timeout, with the last lines of its log (as :class:`DaemonError`)."""

    def died() -> str | None:
        reap()
        if daemon is not None and not is_alive(daemon):
            return f"{daemon.name} exited; last lines of {daemon.log}:\n{log_tail(daemon.log)}"
        return None

    describe = (lambda: f"last lines of {daemon.log}:\n{log_tail(daemon.log)}") if daemon else None
    try:
        wait_until(what, check, timeout, interval=0.2, describe=describe, abort=died)
    except WaitTimeout as exc:
        raise DaemonError(str(exc)) from None


def _wait_gone(d: Daemon, timeout: float) -> bool:
    def gone() -> bool:
        reap()
        return not is_alive(d)

    try:
        return wait_until(f"{d.name} to exit", gone, timeout, interval=0.1)
    except WaitTimeout:
        return False


def stop(d: Daemon, timeout: float = 20.0) -> bool:
    """SIGTERM the daemon (only if it is still the process we started), then SIGKILL.

    Returns True when the process is gone."""
    if not is_alive(d):
        return True
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(d.pid, sig)
        except ProcessLookupError:
            return True
        if _wait_gone(d, wait):
            return True
    return not is_alive(d)


def save(path: Path, daemons: Sequence[Daemon]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(d) for d in daemons], indent=1))
    os.replace(tmp, path)


def load(path: Path) -> list[Daemon]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [Daemon(r["name"], r["pid"], tuple(r["argv"]), r["log"], r["start_time"]) for r in raw]


def processes_using(root: Path, exclude: set[int] | None = None) -> list[int]:
    """PIDs of processes whose cwd, executable or open files lie under ``root``, or whose
    environment names a file under it (jobs and slurmstepd of this state dir)."""
    root_s = str(root.resolve())
    me = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me or (exclude and pid in exclude):
            continue
        try:
            if _under(entry, root_s):
                found.append(pid)
        except OSError:
            continue
    return found


def _under(proc_dir: Path, root_s: str) -> bool:
    def hit(p: str) -> bool:
        return p == root_s or p.startswith(root_s + "/")

    for link in ("cwd", "exe"):
        try:
            if hit(os.readlink(proc_dir / link)):
                return True
        except OSError:
            pass
    try:
        for fd in (proc_dir / "fd").iterdir():
            try:
                if hit(os.readlink(fd)):
                    return True
            except OSError:
                continue
    except OSError:
        pass
    try:
        env = (proc_dir / "environ").read_bytes()
    except OSError:
        return False
    return f"SLURM_CONF={root_s}/".encode() in env


def processes_on_node(root: Path, node: str) -> list[int]:
    """Job processes of devcluster node ``node``: slurmstepd holding files in the node's spool
    directory, and every process whose environment says ``SLURMD_NODENAME=node`` under this
    cluster's SLURM_CONF."""
    spool = str((root / "spool" / node).resolve())
    conf = f"SLURM_CONF={root.resolve()}/".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        hit = conf in env and f"SLURMD_NODENAME={node}\0".encode() in env + b"\0"
        if not hit:
            try:
                hit = any(
                    os.readlink(fd).startswith(spool + "/") or os.readlink(fd) == spool
                    for fd in (entry / "fd").iterdir()
                )
            except OSError:
                hit = False
        if hit:
            found.append(int(entry.name))
    return found
