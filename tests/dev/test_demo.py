"""`sandfill demo` (what `make demo` runs): devcluster + hub, URL and logins printed, the login
page answers, Ctrl-C or SIGTERM stops everything it started (the daemons, the hub, its proxy
and the idle culler in its own session), `--clean` removes the demo accounts."""

from __future__ import annotations

import pwd
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sandfill.dev.devcluster import daemons
from sandfill.dev.devcluster.daemons import processes_using
from sandfill.slurm.commands import wait_until

pytestmark = pytest.mark.slurm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def _tree(pid: int) -> list[daemons.Proc]:
    me = daemons.proc_stat(pid)
    return daemons.descendants(daemons.Daemon("demo", pid, (), "", me.start_time)) if me else []


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_prints_logins_and_a_signal_stops_everything(sig: signal.Signals) -> None:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="sandfill-demo-test-", dir="/tmp"))  # jobs must traverse it
    root.chmod(0o755)
    state, port = root / "demo", _free_port()
    sandfill = [str(Path(sys.executable).with_name("sandfill"))]  # not -m: the checkout would shadow an installed venv
    proc = subprocess.Popen(
        [*sandfill, "demo", "--port", str(port), "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    banner: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the banner's last line arrives (or the process dies)
            banner.append(line)
            if "Ctrl-C stops" in line:
                break
        text = "".join(banner)
        assert f"http://localhost:{port}/" in text, text
        users = [ln.split()[1] for ln in banner if ln.strip().startswith("login:")]
        assert f"http://{sorted(users)[0]}.localhost:{port}/user/{sorted(users)[0]}/" in text, text  # per-user origins
        assert users and all(_exists(u) for u in users)
        saved = state / "demo-logins.txt"
        assert saved.stat().st_mode & 0o777 == 0o600 and all(u in saved.read_text() for u in users)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/login", timeout=30) as r:
            assert r.status == 200
        started = wait_until(
            "the idle culler to run", lambda: (t := _tree(proc.pid)) and any("idle_culler" in _cmd(p.pid) for p in t) and t,
            timeout=60,
        )
    finally:
        proc.send_signal(sig)
        rest = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, rest
    assert "stopping" in rest
    left = [(p.pid, _cmd(p.pid)) for p in started if daemons.is_alive(p)]
    assert not left, f"still running after {sig.name}: {left}"
    assert not processes_using(state), "something the demo started is still running"
    res = subprocess.run([*sandfill, "demo", "--clean", "--state-dir", str(state)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert not any(_exists(u) for u in users)
