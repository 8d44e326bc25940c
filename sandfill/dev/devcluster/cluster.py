"""The embedded devcluster: a real Slurm (munge, MariaDB, slurmdbd, slurmctld, N slurmd) on
loopback, everything under one state directory, stopped by the PIDs it started."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandfill.dev.devcluster import daemons
from sandfill.dev.devcluster.config import (
    Layout,
    Ports,
    free_ports,
    node_names,
    nodes_expr,
    render_mariadb_cnf,
    render_slurm_conf,
    render_slurmdbd_conf,
)
from sandfill.dev.devcluster.policy import policy_fragment, policy_sacctmgr

REQUIRED_COMMANDS = {
    "munged": "munge",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "slurmdbd": "slurmdbd",
    "slurmctld": "slurmctld (slurm-wlm)",
    "slurmd": "slurmd (slurm-wlm)",
    "sacctmgr": "slurm-client (slurm-wlm)",
    "scontrol": "slurm-client (slurm-wlm)",
    "sinfo": "slurm-client (slurm-wlm)",
}
ACCOUNT = "sandfill"
DB_NAME = "slurm_acct_db"
DB_USER = "slurm"


class DevClusterError(RuntimeError):
    """Anything that keeps the devcluster from running; the message says what to do."""


def default_state_dir() -> Path:
    """Per-user default. Root's home is private, and the users' jobs must read slurm.conf, so
    root's devcluster lives under /var/lib; others under their XDG state directory."""
    env = os.environ.get("SANDFILL_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/sandfill/devcluster")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sandfill" / "devcluster"


def missing_requirements() -> list[str]:
    """What keeps this machine from running a devcluster, each with the fix."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append(
            "the devcluster must be started as root (slurmd launches jobs as other users): "
            "run `sudo make demo` / `sudo sandfill devcluster up`"
        )
    missing = sorted({pkg for cmd, pkg in REQUIRED_COMMANDS.items() if not _which(cmd)})
    if missing:
        problems.append(
            "missing Debian packages: "
            + ", ".join(missing)
            + " — run `make setup` as root, or `apt-get install slurm-wlm slurmdbd munge "
            "mariadb-server`"
        )
    return problems


def _which(cmd: str) -> str | None:
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


@dataclass
class ClusterInfo:
    """What `up` decided, saved as cluster.json in the state dir."""

    cluster_name: str
    host: str
    nodes: int
    cpus: int
    memory_mb: int
    ports: dict[str, object]
    policy: str | None
    users: list[str] = field(default_factory=list)
    db_pass: str = ""


class DevCluster:
    """One devcluster, identified by its state directory."""

    def __init__(self, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.layout = Layout(Path(state_dir or default_state_dir()).absolute())

    # ---- public API -------------------------------------------------------------------
    @property
    def slurm_conf(self) -> Path:
        return self.layout.slurm_conf

    def env(self) -> dict[str, str]:
        """Environment variables a process needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.layout.slurm_conf)}

    def subprocess_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env())
        return env

    def info(self) -> ClusterInfo | None:
        try:
            raw = json.loads(self.layout.info.read_text())
        except (OSError, ValueError):
            return None
        return ClusterInfo(**raw)

    def daemons(self) -> list[daemons.Daemon]:
        return daemons.load(self.layout.pids)

    def is_running(self) -> bool:
        ds = self.daemons()
        return bool(ds) and all(daemons.is_alive(d) for d in ds)

    def up(
        self,
        *,
        nodes: int = 4,
        cpus: int = 8,
        memory_mb: int = 16000,
        policy: str | os.PathLike[str] | None = None,
        users: Iterable[str] = (),
        timeout: float = 90.0,
        log: callable = print,  # type: ignore[valid-type]
    ) -> bool:
        """Boot the cluster. Returns False (and does nothing) when it already runs."""
        if nodes < 1 or nodes > 64:
            raise DevClusterError(f"--nodes must be between 1 and 64, got {nodes}")
        if cpus < 1 or cpus > 256:
            raise DevClusterError(f"--cpus must be between 1 and 256, got {cpus}")
        problems = missing_requirements()
        if problems:
            raise DevClusterError("cannot start the devcluster:\n  - " + "\n  - ".join(problems))
        if self.is_running():
            log(f"devcluster in {self.layout.root} is already running (nothing to do)")
            return False
        if self.daemons():
            log("found a half-running devcluster; stopping what is left of it first")
            self.down(log=lambda *_: None)

        r = self.layout
        for d in (r.etc, r.log, r.spool, r.state, r.root / "run"):
            d.mkdir(parents=True, exist_ok=True)
        for d in (r.root, r.etc, r.root / "run"):
            d.chmod(0o755)
        for name in node_names(nodes):
            (r.spool / name).mkdir(exist_ok=True)

        old = self.info()
        port_list = free_ports(3 + nodes)
        ports = Ports(port_list[0], port_list[1], port_list[2], tuple(port_list[3:]))
        host = socket.gethostname()
        db_pass = old.db_pass if old and old.db_pass else secrets.token_hex(12)
        all_users = sorted({"root", *_invoking_users(), *users, *(old.users if old else [])})
        info = ClusterInfo(
            cluster_name="sandfill",
            host=host,
            nodes=nodes,
            cpus=cpus,
            memory_mb=memory_mb,
            ports=asdict(ports),
            policy=str(Path(policy).absolute()) if policy else None,
            users=all_users,
            db_pass=db_pass,
        )
        self._write_configs(info, ports)

        started: list[daemons.Daemon] = []
        env = self.subprocess_env()
        t0 = time.monotonic()
        try:
            self._start_munge(started, env, timeout)
            log(f"munge      up (pid {started[-1].pid})")
            self._start_mariadb(started, env, ports, db_pass, timeout)
            log(f"mariadb    up (pid {started[-1].pid}, 127.0.0.1:{ports.mariadb})")
            self._start_slurmdbd(started, env, timeout)
            log(f"slurmdbd   up (pid {started[-1].pid}, 127.0.0.1:{ports.slurmdbd})")
            self._init_accounting(info, env)
            log(f"accounting cluster={info.cluster_name} account={ACCOUNT} users={','.join(all_users)}")
            self._start_slurmctld(started, env, timeout)
            log(f"slurmctld  up (pid {started[-1].pid}, 127.0.0.1:{ports.slurmctld})")
            self._start_slurmds(started, env, nodes, timeout)
            log(f"slurmd     up ({nodes} nodes x {cpus} CPUs: {nodes_expr(nodes)})")
        except BaseException as exc:
            daemons.save(r.pids, started)
            self._stop_all(started)
            r.pids.unlink(missing_ok=True)
            if isinstance(exc, daemons.DaemonError):
                raise DevClusterError(f"devcluster failed to start: {exc}") from None
            raise
        log(f"devcluster ready in {time.monotonic() - t0:.1f} s; state in {r.root}")
        return True

    def down(self, *, log: callable = print, timeout: float = 30.0) -> bool:  # type: ignore[valid-type]
        """Cancel all jobs, stop every daemon we started (by PID) and any process left
        behind by this state dir's jobs. Returns False when nothing was running."""
        ds = self.daemons()
        if not ds:
            log(f"no devcluster running in {self.layout.root}")
            return False
        env = self.subprocess_env()
        ctld = [d for d in ds if d.name == "slurmctld" and daemons.is_alive(d)]
        if ctld:
            self._cancel_all_jobs(env, timeout)
        self._stop_all(ds)
        leftovers = self._kill_leftovers()
        self.layout.pids.unlink(missing_ok=True)
        log(
            f"devcluster in {self.layout.root} stopped ({len(ds)} daemons"
            + (f", {leftovers} leftover job processes" if leftovers else "")
            + ")"
        )
        return True

    def status(self) -> dict[str, object]:
        ds = self.daemons()
        rows = [{"name": d.name, "pid": d.pid, "alive": daemons.is_alive(d)} for d in ds]
        sinfo = ""
        if any(r["alive"] and r["name"] == "slurmctld" for r in rows):
            sinfo = self._run(["sinfo"], self.subprocess_env(), check=False).stdout
        return {"state_dir": str(self.layout.root), "daemons": rows, "sinfo": sinfo}

    def add_users(self, users: Iterable[str]) -> None:
        """Give ``users`` an association in the cluster's account (idempotent)."""
        users = sorted(set(users))
        if not users:
            return
        env = self.subprocess_env()
        self._sacctmgr(["add", "user", ",".join(users), f"account={ACCOUNT}"], env, ok_exists=True)
        self._grant_policy_qos(users, env)
        info = self.info()
        if info is not None:
            info.users = sorted(set(info.users) | set(users))
            self._save_info(info)

    def stop_daemon(self, name: str) -> daemons.Daemon:
        """Stop one daemon (for outage tests); ``start_daemon`` brings it back."""
        for d in self.daemons():
            if d.name == name:
                daemons.stop(d)
                return d
        raise DevClusterError(f"no daemon named {name!r} in this devcluster")

    def kill_node(self, node: str) -> int:
        """Simulate a node failure: SIGKILL the node's slurmd and every job process on it.
        Returns how many job processes were killed. ``start_daemon(f"slurmd-{node}")`` and
        ``scontrol update nodename=… state=resume`` bring it back."""
        d = next((d for d in self.daemons() if d.name == f"slurmd-{node}"), None)
        if d is None:
            raise DevClusterError(f"no node named {node!r} in this devcluster")
        if daemons.is_alive(d):
            os.kill(d.pid, signal.SIGKILL)
        victims = daemons.processes_on_node(self.layout.root, node)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        daemons.reap()
        return len(victims)

    def start_daemon(self, name: str, timeout: float = 60.0) -> daemons.Daemon:
        ds = self.daemons()
        old = next((d for d in ds if d.name == name), None)
        if old is None:
            raise DevClusterError(f"no daemon named {name!r} in this devcluster")
        if daemons.is_alive(old):
            return old
        env = self.subprocess_env()
        new = daemons.start(name, old.argv, Path(old.log), env)
        ds = [new if d.name == name else d for d in ds]
        daemons.save(self.layout.pids, ds)
        if name == "slurmctld":
            daemons.wait_until("slurmctld to answer", lambda: self._ctld_up(env), timeout, new)
        elif name.startswith("slurmd-"):
            node = name.split("-", 1)[1]
            daemons.wait_until(f"{node} to register", lambda: self._nodes_ready(env, [node]), timeout, new)
        return new

    # ---- boot steps -------------------------------------------------------------------
    def _write_configs(self, info: ClusterInfo, ports: Ports) -> None:
        r = self.layout
        r.slurm_conf.write_text(
            render_slurm_conf(
                r,
                cluster_name=info.cluster_name,
                ports=ports,
                cpus=info.cpus,
                memory_mb=info.memory_mb,
                host=info.host,
            )
        )
        r.slurm_conf.chmod(0o644)
        r.policy_conf.write_text(policy_fragment(info.policy, nodes=nodes_expr(info.nodes)))
        r.policy_conf.chmod(0o644)
        dbd = r.slurmdbd_conf
        dbd.touch(mode=0o600)
        dbd.chmod(0o600)
        dbd.write_text(
            render_slurmdbd_conf(
                r, ports=ports, db_user=DB_USER, db_pass=info.db_pass, db_name=DB_NAME
            )
        )
        cnf = r.etc / "mariadb.cnf"
        cnf.write_text(render_mariadb_cnf(r, port=ports.mariadb))
        cnf.chmod(0o644)  # mariadbd ignores world-writable option files
        self._save_info(info)

    def _save_info(self, info: ClusterInfo) -> None:
        path = self.layout.info
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(asdict(info), indent=1))
        os.replace(tmp, path)

    def _start_munge(self, started: list[daemons.Daemon], env: dict[str, str], timeout: float) -> None:
        r = self.layout
        if not r.munge_key.exists():
            r.munge_key.touch(mode=0o400)
            r.munge_key.write_bytes(secrets.token_bytes(1024))
        r.munge_key.chmod(0o400)
        d = daemons.start(
            "munged",
            [
                _which("munged") or "munged",
                "--foreground",
                "--force",
                f"--socket={r.munge_socket}",
                f"--key-file={r.munge_key}",
                f"--pid-file={r.root}/run/munged.pid",
                f"--seed-file={r.root}/run/munged.seed",
                f"--log-file={r.log}/munged.log",
            ],
            r.log / "munged.out",
            env,
        )
        started.append(d)
        daemons.save(r.pids, started)
        daemons.wait_until("the munge socket", lambda: r.munge_socket.exists(), timeout, d)
        r.munge_socket.chmod(0o777)

    def _start_mariadb(
        self,
        started: list[daemons.Daemon],
        env: dict[str, str],
        ports: Ports,
        db_pass: str,
        timeout: float,
    ) -> None:
        r = self.layout
        cnf = r.etc / "mariadb.cnf"
        fresh = not (r.mariadb_data / "mysql").exists()
        if fresh:
            r.mariadb_data.mkdir(exist_ok=True)
            res = self._run(
                [
                    _which("mariadb-install-db") or "mariadb-install-db",
                    f"--defaults-file={cnf}",
                    "--skip-test-db",
                    "--auth-root-authentication-method=socket",
                ],
                env,
                check=False,
            )
            if res.returncode != 0:
                raise daemons.DaemonError(
                    f"mariadb-install-db failed (exit {res.returncode}):\n{res.stdout[-2000:]}"
                )
        d = daemons.start(
            "mariadbd", [_which("mariadbd") or "mariadbd", f"--defaults-file={cnf}"], r.log / "mariadb.out", env
        )
        started.append(d)
        daemons.save(r.pids, started)
        daemons.wait_until(
            "MariaDB to accept connections",
            lambda: self._sql("SELECT 1", env, check=False).returncode == 0,
            timeout,
            daemons.Daemon(d.name, d.pid, d.argv, str(r.log / "mariadb.log"), d.start_time),
        )
        self._sql(
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{db_pass}';"
            f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{db_pass}';"
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';"
            f"CREATE DATABASE IF NOT EXISTS {DB_NAME};",
            env,
        )

    def _start_slurmdbd(self, started: list[daemons.Daemon], env: dict[str, str], timeout: float) -> None:
        r = self.layout
        d = daemons.start("slurmdbd", [_which("slurmdbd") or "slurmdbd", "-D"], r.log / "slurmdbd.out", env)
        started.append(d)
        daemons.save(r.pids, started)
        daemons.wait_until(
            "slurmdbd to answer",
            lambda: self._run(["sacctmgr", "-n", "show", "cluster"], env, check=False).returncode == 0,
            timeout,
            daemons.Daemon(d.name, d.pid, d.argv, str(r.log / "slurmdbd.log"), d.start_time),
        )

    def _init_accounting(self, info: ClusterInfo, env: dict[str, str]) -> None:
        self._sacctmgr(["add", "cluster", info.cluster_name], env, ok_exists=True)
        self._sacctmgr(
            ["add", "account", ACCOUNT, f"cluster={info.cluster_name}", "description=sandfill devcluster", "organization=sandfill"],
            env,
            ok_exists=True,
        )
        for argv in policy_sacctmgr(info.policy):
            self._sacctmgr(argv, env, ok_exists=True)
        self._sacctmgr(["add", "user", ",".join(info.users), f"account={ACCOUNT}"], env, ok_exists=True)
        self._grant_policy_qos(info.users, env)

    def _grant_policy_qos(self, users: Sequence[str], env: dict[str, str]) -> None:
        qos = self._qos_names(env)
        if qos:
            self._sacctmgr(
                ["modify", "user", "where", f"name={','.join(users)}", "set", f"qos={','.join(qos)}"],
                env,
                ok_exists=True,
            )

    def _qos_names(self, env: dict[str, str]) -> list[str]:
        res = self._run(["sacctmgr", "-n", "-P", "show", "qos", "format=name"], env, check=False)
        return [q for q in res.stdout.split() if q]

    def _start_slurmctld(self, started: list[daemons.Daemon], env: dict[str, str], timeout: float) -> None:
        r = self.layout
        d = daemons.start(
            "slurmctld", [_which("slurmctld") or "slurmctld", "-D", "-i"], r.log / "slurmctld.out", env
        )
        started.append(d)
        daemons.save(r.pids, started)
        daemons.wait_until(
            "slurmctld to answer",
            lambda: self._ctld_up(env),
            timeout,
            daemons.Daemon(d.name, d.pid, d.argv, str(r.log / "slurmctld.log"), d.start_time),
        )

    def _start_slurmds(self, started: list[daemons.Daemon], env: dict[str, str], n: int, timeout: float) -> None:
        r = self.layout
        names = node_names(n)
        for name in names:
            d = daemons.start(
                f"slurmd-{name}", [_which("slurmd") or "slurmd", "-D", "-N", name], r.log / f"slurmd-{name}.out", env
            )
            started.append(d)
        daemons.save(r.pids, started)
        last = started[-1]
        daemons.wait_until(
            f"{n} nodes to register idle",
            lambda: self._nodes_ready(env, names) or self._any_dead(started),
            timeout,
            daemons.Daemon(last.name, last.pid, last.argv, str(r.log / f"slurmd-{names[-1]}.log"), last.start_time),
        )
        dead = [d for d in started if not daemons.is_alive(d)]
        if dead:
            d = dead[0]
            raise daemons.DaemonError(
                f"{d.name} exited during start-up; last lines of its log:\n"
                f"{daemons.log_tail(r.log / (d.name + '.log'))}"
            )

    @staticmethod
    def _any_dead(ds: Sequence[daemons.Daemon]) -> bool:
        daemons.reap()
        return any(not daemons.is_alive(d) for d in ds)

    def _ctld_up(self, env: dict[str, str]) -> bool:
        res = self._run(["scontrol", "ping"], env, check=False)
        return res.returncode == 0 and "is UP" in res.stdout

    def _nodes_ready(self, env: dict[str, str], names: Sequence[str]) -> bool:
        res = self._run(["sinfo", "-h", "-N", "-o", "%N %t"], env, check=False)
        if res.returncode != 0:
            return False
        states = dict(line.split()[:2] for line in res.stdout.splitlines() if line.strip())
        ok = {"idle", "mix", "alloc", "comp"}
        return all(states.get(n) in ok for n in names)

    # ---- shut-down --------------------------------------------------------------------
    def _cancel_all_jobs(self, env: dict[str, str], timeout: float) -> None:
        res = self._run(["squeue", "-h", "-o", "%A"], env, check=False)
        ids = [j for j in res.stdout.split() if j.isdigit()]
        if not ids:
            return
        self._run(["scancel", *ids], env, check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self._run(["squeue", "-h", "-t", "R,CG,S", "-o", "%A"], env, check=False)
            if res.returncode != 0 or not res.stdout.strip():
                return
            time.sleep(0.3)

    def _stop_all(self, ds: Sequence[daemons.Daemon]) -> None:
        # slurmd first (then jobs stop being launched), mariadb/munge last
        order = {"slurmctld": 1, "slurmdbd": 2, "mariadbd": 3, "munged": 4}
        for d in sorted(ds, key=lambda d: order.get(d.name, 0)):
            daemons.stop(d)

    def _kill_leftovers(self) -> int:
        pids = daemons.processes_using(self.layout.root)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    # ---- helpers ------------------------------------------------------------------------
    @staticmethod
    def _run(argv: Sequence[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            res = subprocess.run(
                list(argv), env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(list(argv), 124, "", "timed out")
        res = subprocess.CompletedProcess(res.args, res.returncode, res.stdout + res.stderr if res.returncode else res.stdout, res.stderr)
        if check and res.returncode != 0:
            raise daemons.DaemonError(f"`{' '.join(argv)}` failed (exit {res.returncode}): {res.stdout.strip()[-1500:]}")
        return res

    def _sql(self, sql: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(
            ["mariadb", f"--socket={self.layout.mariadb_socket}", "-u", "root", "-e", sql], env, check=check
        )

    def _sacctmgr(self, args: Sequence[str], env: dict[str, str], ok_exists: bool = False) -> None:
        res = self._run(["sacctmgr", "-i", *args], env, check=False)
        if res.returncode != 0:
            text = res.stdout.strip()
            if ok_exists and ("Nothing new added" in text or "already exists" in text or "Nothing modified" in text):
                return
            raise daemons.DaemonError(f"`sacctmgr -i {' '.join(args)}` failed: {text[-1500:]}")


def _invoking_users() -> list[str]:
    users = []
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        v = os.environ.get(var)
        if v:
            users.append(v)
    return users
