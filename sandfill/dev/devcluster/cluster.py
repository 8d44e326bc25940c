"""The embedded devcluster: a real Slurm (munge, MariaDB, slurmdbd, slurmctld, N slurmd) on
loopback, everything under one state directory, stopped by the PIDs it started."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandfill.dev.devcluster import accounting, boot, daemons
from sandfill.dev.devcluster.accounting import ACCOUNT
from sandfill.dev.devcluster.boot import Boot
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
from sandfill.dev.devcluster.policy import policy_fragment
from sandfill.files import private_dir, write_private
from sandfill.slurm import squeue
from sandfill.slurm.commands import Runner, WaitTimeout, wait_until
from sandfill.slurm.scancel import cancel_argv

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
__all__ = ["ACCOUNT", "ClusterInfo", "DevCluster", "DevClusterError", "default_state_dir", "missing_requirements"]


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
    missing = sorted({pkg for cmd, pkg in REQUIRED_COMMANDS.items() if not boot.find(cmd)})
    if missing:
        problems.append(
            "missing Debian packages: "
            + ", ".join(missing)
            + " — run `make setup` as root, or `apt-get install slurm-wlm slurmdbd munge "
            "mariadb-server`"
        )
    return problems


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
    private_data: bool = True


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

    def runner(self, timeout: float = 60.0) -> Runner:
        """The one command runner (:class:`sandfill.slurm.commands.Runner`) for this cluster."""
        return Runner(self.layout.slurm_conf, timeout=timeout)

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
        private_data: bool = True,
        timeout: float = 90.0,
        log: Callable[[str], object] = print,
    ) -> bool:
        """Boot the cluster. Returns False (and does nothing) when it already runs.

        ``private_data`` (the default) sets Slurm's ``PrivateData=jobs,usage,users``: a user
        sees only their own jobs, usage and associations (root and the hub see all); False
        leaves every job visible to every user, Slurm's own default."""
        _check_can_start(nodes, cpus)
        if self.is_running():
            log(f"devcluster in {self.layout.root} is already running (nothing to do)")
            return False
        if self.daemons():
            log("found a half-running devcluster; stopping what is left of it first")
            self.down(log=lambda *_: None)
        self._make_dirs(nodes)
        old = self.info()
        port_list = free_ports(3 + nodes)
        ports = Ports(port_list[0], port_list[1], port_list[2], tuple(port_list[3:]))
        info = ClusterInfo(
            cluster_name="sandfill",
            host=socket.gethostname(),
            nodes=nodes,
            cpus=cpus,
            memory_mb=memory_mb,
            ports=asdict(ports),
            policy=str(Path(policy).absolute()) if policy else None,
            users=sorted({"root", *_invoking_users(), *users, *(old.users if old else [])}),
            private_data=private_data,
            db_pass=old.db_pass if old and old.db_pass else secrets.token_hex(12),
        )
        self._write_configs(info, ports)
        t0 = time.monotonic()
        self._boot(info, ports, timeout, log)
        log(f"devcluster ready in {time.monotonic() - t0:.1f} s; state in {self.layout.root}")
        return True

    def _boot(self, info: ClusterInfo, ports: Ports, timeout: float, log: Callable[[str], object]) -> None:
        """Start the daemons in order; on any failure stop those started (by PID)."""
        steps = Boot(self.layout, self.runner(), timeout)
        try:
            log(f"munge      up (pid {steps.munge().pid})")
            log(f"mariadb    up (pid {steps.mariadb(info.db_pass).pid}, 127.0.0.1:{ports.mariadb})")
            log(f"slurmdbd   up (pid {steps.slurmdbd().pid}, 127.0.0.1:{ports.slurmdbd})")
            accounting.init_accounting(steps.runner, info.cluster_name, info.policy, info.users)
            log(f"accounting cluster={info.cluster_name} account={ACCOUNT} users={','.join(info.users)}")
            log(f"slurmctld  up (pid {steps.slurmctld().pid}, 127.0.0.1:{ports.slurmctld})")
            steps.slurmds(node_names(info.nodes))
            log(f"slurmd     up ({info.nodes} nodes x {info.cpus} CPUs: {nodes_expr(info.nodes)})")
        except BaseException as exc:
            daemons.save(self.layout.pids, steps.started)
            self._stop_all(steps.started)
            self.layout.pids.unlink(missing_ok=True)
            if isinstance(exc, daemons.DaemonError):
                raise DevClusterError(f"devcluster failed to start: {exc}") from None
            raise

    def _make_dirs(self, nodes: int) -> None:
        """The state directory's folders, each ours (not a symlink) and of its mode even
        when it existed with a looser one: what the jobs read (slurm.conf, the munge socket,
        the spool) is traversable, the rest is root's alone."""
        r = self.layout
        for d in (r.root, r.etc, r.root / "run", r.spool, *(r.spool / n for n in node_names(nodes))):
            private_dir(d, 0o755)
        for d in (r.log, r.state, r.mariadb_data, r.mariadb_tmp):
            private_dir(d, 0o700)

    def down(self, *, log: Callable[[str], object] = print, timeout: float = 30.0) -> bool:
        """Cancel all jobs, then stop every daemon we started (by PID, start time checked)
        and whatever runs below them in the process tree: the jobs' processes are the
        slurmds' descendants. Nothing is chosen by its environment or open files, so a shell
        with this cluster's SLURM_CONF, or one sitting in its state directory, is left alone.
        Returns False when nothing was running."""
        ds = self.daemons()
        if not ds:
            log(f"no devcluster running in {self.layout.root}")
            return False
        ctld = [d for d in ds if d.name == "slurmctld" and daemons.is_alive(d)]
        if ctld:
            self._cancel_all_jobs(timeout)
        leftovers = self._stop_all(ds)
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
            sinfo = self.runner().run(["sinfo"]).stdout
        return {"state_dir": str(self.layout.root), "daemons": rows, "sinfo": sinfo}

    def add_users(self, users: Iterable[str]) -> None:
        """Give ``users`` an association in the cluster's account (idempotent)."""
        users = sorted(set(users))
        if not users:
            return
        accounting.add_users(self.runner(), users)
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
        """Simulate a node failure: SIGKILL every job process on the node (the processes
        below its slurmd) and the slurmd. Returns how many job processes were killed.
        ``start_daemon(f"slurmd-{node}")`` and ``scontrol update nodename=… state=resume``
        bring it back."""
        d = next((d for d in self.daemons() if d.name == f"slurmd-{node}"), None)
        if d is None:
            raise DevClusterError(f"no node named {node!r} in this devcluster")
        victims = daemons.kill_descendants(d)
        if daemons.is_alive(d):
            os.kill(d.pid, signal.SIGKILL)
        daemons.reap()
        return victims

    def start_daemon(self, name: str, timeout: float = 60.0) -> daemons.Daemon:
        ds = self.daemons()
        old = next((d for d in ds if d.name == name), None)
        if old is None:
            raise DevClusterError(f"no daemon named {name!r} in this devcluster")
        if daemons.is_alive(old):
            return old
        runner = self.runner()
        new = daemons.start(name, old.argv, Path(old.log), runner.env)
        ds = [new if d.name == name else d for d in ds]
        daemons.save(self.layout.pids, ds)
        if name == "slurmctld":
            daemons.wait_ready("slurmctld to answer", lambda: boot.ctld_up(runner), timeout, new)
        elif name.startswith("slurmd-"):
            node = name.split("-", 1)[1]
            daemons.wait_ready(f"{node} to register", lambda: boot.nodes_ready(runner, [node]), timeout, new)
        return new

    # ---- boot steps -------------------------------------------------------------------
    def _write_configs(self, info: ClusterInfo, ports: Ports) -> None:
        """Every file through :func:`sandfill.files.write_private` (O_EXCL|O_NOFOLLOW, then
        renamed into place): the public ones 0644, the DB password's 0600."""
        r = self.layout
        write_private(r.slurm_conf, mode=0o644, data=render_slurm_conf(
                r,
                cluster_name=info.cluster_name,
                ports=ports,
                cpus=info.cpus,
                memory_mb=info.memory_mb,
                host=info.host,
                private_data=info.private_data,
            ))
        write_private(r.policy_conf, policy_fragment(info.policy, nodes=nodes_expr(info.nodes)), 0o644)
        dbd = render_slurmdbd_conf(r, ports=ports, db_user=boot.DB_USER, db_pass=info.db_pass, db_name=boot.DB_NAME)
        write_private(r.slurmdbd_conf, dbd, 0o600)  # slurmdbd insists on 0600
        # mariadbd ignores world-writable option files
        write_private(r.etc / "mariadb.cnf", render_mariadb_cnf(r, port=ports.mariadb), 0o644)
        self._save_info(info)

    def _save_info(self, info: ClusterInfo) -> None:
        write_private(self.layout.info, json.dumps(asdict(info), indent=1), 0o600)  # the DB password

    # ---- shut-down --------------------------------------------------------------------
    def _cancel_all_jobs(self, timeout: float) -> None:
        runner = self.runner()
        res = runner.run(squeue.ids_argv())
        ids = [j for j in squeue.parse_ids(res.stdout) if j.isdigit()]
        if not ids:
            return
        runner.run(cancel_argv(ids))

        def off_the_nodes() -> bool:
            res = runner.run(squeue.ids_argv("R,CG,S"))
            return res.returncode != 0 or not squeue.parse_ids(res.stdout)

        with contextlib.suppress(WaitTimeout):  # down goes on: the daemons are stopped next
            wait_until("the jobs to leave the nodes", off_the_nodes, timeout, interval=0.3)

    def _stop_all(self, ds: Sequence[daemons.Daemon]) -> int:
        """Stop ``ds``, slurmd first (then jobs stop being launched), mariadb/munge last,
        each after what runs below it; returns how many such processes were killed."""
        order = {"slurmctld": 1, "slurmdbd": 2, "mariadbd": 3, "munged": 4}
        killed = 0
        for d in sorted(ds, key=lambda d: order.get(d.name, 0)):
            killed += daemons.kill_descendants(d)
            daemons.stop(d)
        return killed


def _check_can_start(nodes: int, cpus: int) -> None:
    if nodes < 1 or nodes > 64:
        raise DevClusterError(f"--nodes must be between 1 and 64, got {nodes}")
    if cpus < 1 or cpus > 256:
        raise DevClusterError(f"--cpus must be between 1 and 256, got {cpus}")
    problems = missing_requirements()
    if problems:
        raise DevClusterError("cannot start the devcluster:\n  - " + "\n  - ".join(problems))


def _invoking_users() -> list[str]:
    users = []
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        v = os.environ.get(var)
        if v:
            users.append(v)
    return users
