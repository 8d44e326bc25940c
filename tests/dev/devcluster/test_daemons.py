"""``sandfill.dev.devcluster.daemons`` without Slurm: a supervised daemon (as each slurmd
runs) keeps what double-forks below it in its process tree and reaps it, and
:func:`kill_descendants` stops exactly that tree: a bystander with the same environment,
working directory and open files is left alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sandfill.dev.devcluster import daemons
from sandfill.slurm.commands import wait_until

# a "slurmd" whose children double-fork (as slurmd's slurmstepd do): one orphan lives on, one
# ends at once and must be reaped; the daemon itself runs until it is stopped
SCRIPT = "(sleep 0.1 &); (exec sleep 600 &); exec sleep 601"


def _children(pid: int) -> list[daemons.Proc]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := daemons.proc_stat(int(entry.name))) and st.ppid == pid:
            out.append(st)
    return out


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_supervised_names() -> None:
    assert daemons.supervised("slurmd-node1") and not daemons.supervised("slurmctld")
    assert not daemons.supervised("mariadbd") and not daemons.supervised("munged")


def test_a_supervised_daemon_keeps_and_reaps_what_double_forks(tmp_path: Path) -> None:
    d = daemons.start("slurmd-test", ["/bin/sh", "-c", SCRIPT], tmp_path / "log" / "d.out")
    with open(tmp_path / "log" / "held.txt", "wb") as held:
        bystander = subprocess.Popen(["sleep", "600"], cwd=tmp_path, stdout=held, start_new_session=True, env={**os.environ, "SLURM_CONF": str(tmp_path / "slurm.conf")})
    try:
        # the orphan that lived on is the supervisor's child now; the short one left no zombie
        kids = wait_until(
            "the orphans to be the supervisor's (and the short one reaped)",
            lambda: (k := _children(d.pid)) and sorted(_cmd(p.pid) for p in k) == ["sleep 600", "sleep 601"] and k,
            timeout=30,
        )
        assert all(k.state != "Z" for k in kids)
        assert {p.pid for p in daemons.descendants(d)} == {k.pid for k in kids}
        assert daemons.kill_descendants(d) == 2
        assert not any(daemons.is_alive(k) for k in kids)
        wait_until("the supervisor to exit with its child", lambda: (daemons.reap(), not daemons.is_alive(d))[1], timeout=30)
        assert bystander.poll() is None, "a bystander was killed"
    finally:
        daemons.stop(d)
        bystander.kill()
        bystander.wait(10)


def test_stop_passes_sigterm_to_the_supervised_daemon(tmp_path: Path) -> None:
    d = daemons.start("slurmd-test", ["/bin/sh", "-c", "exec sleep 602"], tmp_path / "d.out")
    child = wait_until("the daemon under its supervisor", lambda: _children(d.pid), timeout=30)[0]
    assert daemons.stop(d, timeout=10) is True
    assert not daemons.is_alive(child) and not daemons.is_alive(d)


def test_descendants_of_a_dead_or_recycled_daemon_are_none(tmp_path: Path) -> None:
    gone = daemons.Daemon("slurmd-x", os.getpid(), ("x",), "", start_time=-5.0)  # our PID, another start
    assert daemons.descendants(gone) == [] and daemons.kill_descendants(gone, timeout=1) == 0
