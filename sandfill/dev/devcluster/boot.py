"""The devcluster's boot steps: start each daemon (munge, MariaDB, slurmdbd, slurmctld, the
slurmds) and wait until it answers. Every daemon started is saved to the PID file at once,
so a boot that fails half-way is stopped by PID like a whole one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from sandfill.dev.devcluster import daemons
from sandfill.dev.devcluster.config import Layout, gpu_files
from sandfill.dev.devcluster.nodeclasses import NodeSpec
from sandfill.files import private_dir, write_private
from sandfill.slurm import sacctmgr, scontrol, sinfo
from sandfill.slurm.commands import Result, Runner

DB_NAME = "slurm_acct_db"
DB_USER = "slurm"
READY_STATES = frozenset({"idle", "mix", "alloc", "comp"})


def find(cmd: str) -> str | None:
    """``cmd``'s path, the sbin directories included (None: not installed)."""
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def which(cmd: str) -> str:
    """``cmd``'s path, or ``cmd`` itself when it is not found."""
    return find(cmd) or cmd


def checked(runner: Runner, argv: Sequence[str]) -> Result:
    """Run ``argv``; :class:`~daemons.DaemonError` with its output when it fails."""
    res = runner.run(argv)
    if res.returncode != 0:
        raise daemons.DaemonError(f"`{' '.join(argv)}` failed (exit {res.returncode}): {res.output[-1500:]}")
    return res


def _own_file(path: Path, mode: int) -> bool:
    """Whether ``path`` is a plain file of ours with exactly ``mode`` (never following a link)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == mode


def gpu_stand_ins(layout: Layout, nodes: Sequence[NodeSpec]) -> None:
    """Character devices where gres.conf names the nodes' GPUs: each a root-only copy of
    /dev/null (1,3), only stat'ed by slurmd. Whatever else is at such a path (a symlink, a
    file) is replaced, never followed."""
    for n in nodes:
        files = gpu_files(layout, n)
        if files:
            private_dir(files[0].parent, 0o755)
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(f)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and st.st_uid == 0:
                    continue
                f.unlink()
            os.mknod(f, stat.S_IFCHR | 0o600, os.makedev(1, 3))


def ctld_up(runner: Runner) -> bool:
    res = runner.run(scontrol.ping_argv())
    return res.returncode == 0 and scontrol.parse_ping(res.stdout)


def nodes_ready(runner: Runner, names: Sequence[str]) -> bool:
    res = runner.run(sinfo.nodes_argv())
    if res.returncode != 0:
        return False
    states = sinfo.node_states(sinfo.parse_sinfo_nodes(res.stdout))
    return all(states.get(n) in READY_STATES for n in names)


class Boot:
    """One boot: the daemons started so far (:attr:`started`) and the runner for the
    commands that ask whether they answer."""

    def __init__(self, layout: Layout, runner: Runner, timeout: float) -> None:
        self.r = layout
        self.runner = runner
        self.timeout = timeout
        self.started: list[daemons.Daemon] = []

    def _start(self, name: str, argv: Sequence[str], out: Path) -> daemons.Daemon:
        d = daemons.start(name, argv, out, self.runner.env)
        self.started.append(d)
        daemons.save(self.r.pids, self.started)
        return d

    def _wait(self, what: str, check: Callable[[], object], d: daemons.Daemon, log: Path) -> None:
        # the daemon's own log (not its stdout) says why it would not answer
        watched = daemons.Daemon(d.name, d.pid, d.argv, str(log), d.start_time)
        daemons.wait_ready(what, check, self.timeout, watched)

    def munge(self) -> daemons.Daemon:
        r = self.r
        if not _own_file(r.munge_key, 0o400):  # missing, loose, a symlink or someone else's
            write_private(r.munge_key, secrets.token_bytes(1024), 0o400)
        argv = [
            which("munged"),
            "--foreground",
            "--force",
            f"--socket={r.munge_socket}",
            f"--key-file={r.munge_key}",
            f"--pid-file={r.root}/run/munged.pid",
            f"--seed-file={r.root}/run/munged.seed",
            f"--log-file={r.log}/munged.log",
        ]
        d = self._start("munged", argv, r.log / "munged.out")
        daemons.wait_ready("the munge socket", r.munge_socket.exists, self.timeout, d)
        r.munge_socket.chmod(0o777)
        return d

    def mariadb(self, db_pass: str) -> daemons.Daemon:
        r = self.r
        cnf = r.etc / "mariadb.cnf"
        if not (r.mariadb_data / "mysql").exists():
            argv = [
                which("mariadb-install-db"),
                f"--defaults-file={cnf}",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
                f"--tmpdir={r.mariadb_tmp}",  # passed on to mariadbd --bootstrap
            ]
            res = self.runner.run(argv)
            if res.returncode != 0:
                raise daemons.DaemonError(f"mariadb-install-db failed (exit {res.returncode}):\n{res.output[-2000:]}")
        d = self._start("mariadbd", [which("mariadbd"), f"--defaults-file={cnf}"], r.log / "mariadb.out")
        self._wait("MariaDB to accept connections", lambda: self.sql("SELECT 1", check=False).returncode == 0, d, r.log / "mariadb.log")
        self.sql(
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{db_pass}';"
            f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{db_pass}';"
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';"
            f"CREATE DATABASE IF NOT EXISTS {DB_NAME};"
        )
        return d

    def sql(self, sql: str, check: bool = True) -> Result:
        argv = ["mariadb", f"--socket={self.r.mariadb_socket}", "-u", "root", "-e", sql]
        return checked(self.runner, argv) if check else self.runner.run(argv)

    def slurmdbd(self) -> daemons.Daemon:
        d = self._start("slurmdbd", [which("slurmdbd"), "-D"], self.r.log / "slurmdbd.out")
        self._wait(
            "slurmdbd to answer",
            lambda: self.runner.run(sacctmgr.show_clusters_argv()).returncode == 0,
            d,
            self.r.log / "slurmdbd.log",
        )
        return d

    def slurmctld(self) -> daemons.Daemon:
        d = self._start("slurmctld", [which("slurmctld"), "-D", "-i"], self.r.log / "slurmctld.out")
        self._wait("slurmctld to answer", lambda: ctld_up(self.runner), d, self.r.log / "slurmctld.log")
        return d

    def slurmds(self, names: Sequence[str], place: Callable[[str, list[str]], list[str]] = lambda _n, a: a) -> None:
        """A slurmd per node, its argv passed through ``place`` (a node's network namespace)."""
        r = self.r
        for name in names:
            argv = place(name, [which("slurmd"), "-D", "-N", name])
            self._start(f"slurmd-{name}", argv, r.log / f"slurmd-{name}.out")
        self._wait(
            f"{len(names)} nodes to register idle",
            lambda: nodes_ready(self.runner, names) or self._any_dead(),
            self.started[-1],
            r.log / f"slurmd-{names[-1]}.log",
        )
        dead = [d for d in self.started if not daemons.is_alive(d)]
        if dead:
            d = dead[0]
            raise daemons.DaemonError(
                f"{d.name} exited during start-up; last lines of its log:\n"
                f"{daemons.log_tail(r.log / (d.name + '.log'))}"
            )

    def _any_dead(self) -> bool:
        daemons.reap()
        return any(not daemons.is_alive(d) for d in self.started)
