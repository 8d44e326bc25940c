"""Start, watch and stop the devcluster's daemons: only the ones we started, by PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
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


@dataclass(frozen=True)
class Proc:
    """One process as /proc/PID/stat shows it: its parent, start time and state letter."""

    pid: int
    ppid: int
    start_time: float
    state: str


def proc_stat(pid: int) -> Proc | None:
    """``pid``'s /proc/PID/stat (None when the process does not exist)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = raw.rsplit(")", 1)[1].split()
    return Proc(pid, int(fields[1]), float(fields[19]), fields[0])


def proc_start_time(pid: int) -> float | None:
    """The process start time from /proc (None when the process does not exist)."""
    st = proc_stat(pid)
    return st.start_time if st else None


def is_alive(d: Daemon | Proc) -> bool:
    """Whether the process is still the one recorded (same PID and start time) and not a
    zombie."""
    st = proc_stat(d.pid)
    return st is not None and st.start_time == d.start_time and st.state != "Z"


def descendants(d: Daemon) -> list[Proc]:
    """The live processes below ``d`` in the process tree, found by parentage alone (never by
    environment or open files). A child counts only if it started no earlier than its parent
    (a recycled PID cannot pass), and only while ``d`` is still the process we started."""
    if not is_alive(d):
        return []
    children: dict[int, list[Proc]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := proc_stat(int(entry.name))) is not None:
            children.setdefault(st.ppid, []).append(st)
    found: list[Proc] = []
    todo = [Proc(d.pid, 0, d.start_time, "")]
    while todo:
        parent = todo.pop()
        for child in children.get(parent.pid, []):
            if child.start_time >= parent.start_time:
                todo.append(child)
                found.append(child)
    return [p for p in found if p.state != "Z"]


def kill_descendants(d: Daemon, timeout: float = 20.0) -> int:
    """SIGKILL everything below ``d`` until nothing is left (what is forked meanwhile is
    below it too, and goes in the next round). Below a slurmd's supervisor that is the slurmd
    and every process of the jobs it ran; the supervisor then exits by itself. Returns how
    many processes were killed."""
    killed: set[tuple[int, float]] = set()

    def none_left() -> bool:
        left = descendants(d)
        for p in left:
            if is_alive(p):  # still that process (PID and start time): kill it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                killed.add((p.pid, p.start_time))
        return not left

    with contextlib.suppress(WaitTimeout):
        wait_until(f"the processes below {d.name} to go", none_left, timeout, interval=0.1)
    return len(killed)


def log_tail(path: str | os.PathLike[str], lines: int = 20) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# A supervisor for ARGV: a child subreaper (prctl PR_SET_CHILD_SUBREAPER) that runs ARGV as its
# child, so whatever double-forks or is orphaned below it (slurmd's slurmstepd and the jobs'
# processes; a hub's proxy and services) stays in its tree instead of going to init. It reaps
# those orphans, passes the usual signals on to ARGV and exits with ARGV's status when ARGV
# exits; in "end" mode it first stops (SIGTERM, then SIGKILL) whatever ARGV left behind.
_SUPERVISE = """\
import ctypes, os, signal, sys, time
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed: " + os.strerror(ctypes.get_errno()))
mode, argv = sys.argv[1], sys.argv[2:]
child = os.fork()
if child == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
def forward(signum, _frame):
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(sig, forward)
def left():
    out = []
    for e in os.listdir("/proc"):
        try:
            f = open("/proc/%s/stat" % e).read().rsplit(")", 1)[1].split() if e.isdigit() else ()
        except OSError:
            continue
        if f and int(f[1]) == os.getpid() and f[0] != "Z":
            out.append(int(e))
    return out
def reap_all():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
while True:
    pid, status = os.wait()
    if pid == child:
        code = os.waitstatus_to_exitcode(status)
        break
if mode == "end":
    for sig, rounds in ((signal.SIGTERM, 150), (signal.SIGKILL, 50)):
        for pid in left():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        for _ in range(rounds):
            reap_all()
            if not left():
                break
            time.sleep(0.1)
sys.exit(code if code >= 0 else 128 - code)
"""


def supervised_argv(argv: Sequence[str], *, end_the_rest: bool = False) -> list[str]:
    """``argv`` run under the supervisor above; with ``end_the_rest``, what it leaves behind
    when it exits is stopped too (a hub's proxy and services)."""
    mode = "end" if end_the_rest else "keep"
    return [sys.executable, "-I", "-S", "-c", _SUPERVISE, mode, *argv]


def supervised(name: str) -> bool:
    """Whether daemon ``name`` runs under a reaping supervisor (the recorded PID is then the
    supervisor's): the slurmds, whose job steps (slurmstepd and the jobs' processes)
    double-fork away from them."""
    return name.startswith("slurmd")


def start(
    name: str,
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Daemon:
    """Start ``argv`` detached in its own session, output appended to ``log`` (a slurmd
    under a supervisor that keeps its jobs in its process tree, :func:`supervised`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    run = supervised_argv(argv) if supervised(name) else list(argv)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            run,
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
    """SIGTERM the daemon (only if it is still the process we started); if it will not go,
    SIGKILL what runs below it (a supervisor's slurmd would outlive it) and then it.

    Returns True when the process is gone."""
    if not is_alive(d):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(d.pid, signal.SIGTERM)
    if _wait_gone(d, timeout):
        return True
    kill_descendants(d, 5.0)
    with contextlib.suppress(ProcessLookupError):
        os.kill(d.pid, signal.SIGKILL)
    return _wait_gone(d, 5.0)


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
    environment names a file under it. For checks and messages only: never a reason to
    signal a process (anyone's shell may match; :func:`descendants` is what we stop)."""
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
