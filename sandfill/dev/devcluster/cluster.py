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

from sandfill.dev.devcluster import accounting, boot, daemons, netns, nodeclasses
from sandfill.dev.devcluster.accounting import ACCOUNT
from sandfill.dev.devcluster.boot import Boot
from sandfill.dev.devcluster.config import (
    Layout,
    Placement,
    Ports,
    free_ports,
    render_gres_conf,
    render_mariadb_cnf,
    render_slurm_conf,
    render_slurmdbd_conf,
)
from sandfill.dev.devcluster.nodeclasses import NodeClasses, NodeSpec
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
    shape: str = "single-host"  # or "hosts": one network namespace per node
    node_specs: list[dict[str, object]] = field(default_factory=list)  # NodeSpec fields; none: uniform
    head_addr: str = "127.0.0.1"
    node_addrs: dict[str, str] = field(default_factory=dict)  # none: every node on 127.0.0.1

    def specs(self) -> list[NodeSpec]:
        """The nodes slurm.conf declares (the single-host shape's ``node1..N`` by default)."""
        if not self.node_specs:
            return nodeclasses.uniform(self.nodes, cpus=self.cpus, memory_mb=self.memory_mb)
        return [NodeSpec(**{**d, "features": tuple(d.get("features") or ())}) for d in self.node_specs]  # type: ignore[arg-type]

    def placement(self) -> Placement:
        names = [n.name for n in self.specs()]
        if self.shape != "hosts":
            return Placement(self.host, "127.0.0.1", ("127.0.0.1",) * len(names), (self.host,) * len(names))
        return Placement(self.host, self.head_addr, tuple(self.node_addrs[n] for n in names), tuple(names))


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

    def node_addresses(self) -> dict[str, str]:
        """Each node's ``NodeAddr`` (all 127.0.0.1 on a single host; their own with ``--hosts``),
        for a site file's node-name → address map; empty when the cluster was never booted."""
        info = self.info()
        if info is None:
            return {}
        return dict(zip((n.name for n in info.specs()), info.placement().node_addrs, strict=True))

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
        hosts: bool = False,
        node_classes: NodeClasses | None = None,
        timeout: float = 90.0,
        log: Callable[[str], object] = print,
    ) -> bool:
        """Boot the cluster. Returns False (and does nothing) when it already runs.

        ``private_data`` (the default) sets Slurm's ``PrivateData=jobs,usage,users``: a user
        sees only their own jobs, usage and associations (root and the hub see all); False
        leaves every job visible to every user, Slurm's own default.

        ``hosts`` boots the site shape: one network namespace per node, each with its own
        address (:mod:`~sandfill.dev.devcluster.netns`), nodes of ``node_classes``
        (default :data:`~sandfill.dev.devcluster.nodeclasses.DEFAULT_HOSTS`)."""
        specs = _node_specs(nodes, cpus, memory_mb, hosts, node_classes)
        _check_can_start(specs, hosts)
        if self.is_running():
            log(f"devcluster in {self.layout.root} is already running (nothing to do)")
            return False
        if self.daemons() or self.layout.network.exists():
            log("found a half-running devcluster; stopping what is left of it first")
            self.down(log=lambda *_: None)
        self._make_dirs([n.name for n in specs])
        port_list = free_ports(3 + len(specs))
        ports = Ports(port_list[0], port_list[1], port_list[2], tuple(port_list[3:]))
        info = _new_info(self.info(), specs, ports, policy, users, private_data, hosts)
        t0 = time.monotonic()
        try:
            if hosts:
                self._network_up(info, log)
            self._write_configs(info, ports)
            self._boot(info, ports, timeout, log)
        except BaseException:
            try:
                self._network_down(log=lambda *_: None)
            except netns.NetnsError as exc:  # kept in network.json: `down` tries again
                log(f"the network could not be removed ({exc}); `sandfill devcluster down` retries")
            raise
        log(f"devcluster ({info.shape}) ready in {time.monotonic() - t0:.1f} s; state in {self.layout.root}")
        return True

    def _network_up(self, info: ClusterInfo, log: Callable[[str], object]) -> None:
        """Claim a subnet, save the plan, then make the bridge, veths and namespaces."""
        net = netns.plan(self.layout.root, [n.name for n in info.specs()])
        netns.save(self.layout.network, net)  # first: a crash part-way is still cleaned up by `down`
        try:
            netns.create(net)
        except netns.NetnsError as exc:
            raise DevClusterError(f"devcluster failed to make its network: {exc}") from None
        info.head_addr = net.head_addr
        info.node_addrs = {n: net.addr(n) for n in net.nodes}
        log(f"network    {net.subnet} on bridge {net.bridge}: head {net.head_addr}, {len(net.nodes)} namespaces")

    def _network_down(self, log: Callable[[str], object]) -> None:
        net = netns.load(self.layout.network)
        if net is None:
            return
        netns.remove(net, log=log)
        self.layout.network.unlink(missing_ok=True)
        log(f"network    {net.subnet}: bridge {net.bridge} and {len(net.nodes)} namespaces removed")

    def _slurmd_argv(self, node: str, argv: list[str]) -> list[str]:
        net = netns.load(self.layout.network)
        return net.exec_argv(node, argv) if net is not None and node in net.nodes else argv

    def _boot(self, info: ClusterInfo, ports: Ports, timeout: float, log: Callable[[str], object]) -> None:
        """Start the daemons in order; on any failure stop those started (by PID)."""
        steps = Boot(self.layout, self.runner(), timeout)
        head = info.head_addr
        specs = info.specs()
        try:
            log(f"munge      up (pid {steps.munge().pid})")
            log(f"mariadb    up (pid {steps.mariadb(info.db_pass).pid}, 127.0.0.1:{ports.mariadb})")
            log(f"slurmdbd   up (pid {steps.slurmdbd().pid}, {head}:{ports.slurmdbd})")
            accounting.init_accounting(steps.runner, info.cluster_name, info.policy, info.users)
            log(f"accounting cluster={info.cluster_name} account={ACCOUNT} users={','.join(info.users)}")
            log(f"slurmctld  up (pid {steps.slurmctld().pid}, {head}:{ports.slurmctld})")
            steps.slurmds([n.name for n in specs], self._slurmd_argv)
            log(f"slurmd     up ({info.nodes} nodes: {nodeclasses.hostlist(specs)})")
        except BaseException as exc:
            daemons.save(self.layout.pids, steps.started)
            self._stop_all(steps.started)
            self.layout.pids.unlink(missing_ok=True)
            if isinstance(exc, daemons.DaemonError):
                raise DevClusterError(f"devcluster failed to start: {exc}") from None
            raise

    def _make_dirs(self, nodes: Sequence[str]) -> None:
        """The state directory's folders, each ours (not a symlink) and of its mode even
        when it existed with a looser one: what the jobs read (slurm.conf, the munge socket,
        the spool) is traversable, the rest is root's alone."""
        r = self.layout
        for d in (r.root, r.etc, r.root / "run", r.spool, *(r.spool / n for n in nodes)):
            private_dir(d, 0o755)
        for d in (r.log, r.state, r.mariadb_data, r.mariadb_tmp):
            private_dir(d, 0o700)

    def down(self, *, log: Callable[[str], object] = print, timeout: float = 30.0) -> bool:
        """Cancel all jobs, then stop every daemon we started (by PID, start time checked)
        and whatever runs below them in the process tree: the jobs' processes are the
        slurmds' descendants. Nothing is chosen by its environment or open files, so a shell
        with this cluster's SLURM_CONF, or one sitting in its state directory, is left alone.
        The ``--hosts`` shape's namespaces, veths and bridge go last (also after a crash
        that left only them, recorded in the state directory). Returns False when nothing
        was running."""
        ds = self.daemons()
        if not ds and not self.layout.network.exists():
            log(f"no devcluster running in {self.layout.root}")
            return False
        ctld = [d for d in ds if d.name == "slurmctld" and daemons.is_alive(d)]
        if ctld:
            self._cancel_all_jobs(timeout)
        leftovers = self._stop_all(ds)
        self.layout.pids.unlink(missing_ok=True)
        self._network_down(log)
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
        info = self.info()
        shape: dict[str, object] = {}
        if info is not None and rows:
            where = info.placement()
            shape = {
                "shape": info.shape,
                "head_addr": where.head_addr,
                "nodes": [
                    {"name": n.name, "class": n.node_class, "address": a, "cpus": n.cpus,
                     "memory_mb": n.memory_mb, "features": list(n.features), "gpus": n.gpus}
                    for n, a in zip(info.specs(), where.node_addrs, strict=True)
                ],
            }
        return {"state_dir": str(self.layout.root), **shape, "daemons": rows, "sinfo": sinfo}

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
        r, specs, where = self.layout, info.specs(), info.placement()
        conf = render_slurm_conf(
            r, cluster_name=info.cluster_name, ports=ports, nodes=specs, where=where, private_data=info.private_data
        )
        write_private(r.slurm_conf, conf, 0o644)
        write_private(r.gres_conf, render_gres_conf(r, specs), 0o644)
        boot.gpu_stand_ins(r, specs)
        write_private(r.policy_conf, policy_fragment(info.policy, nodes=nodeclasses.hostlist(specs), machine=specs), 0o644)
        dbd = render_slurmdbd_conf(
            r, ports=ports, db_user=boot.DB_USER, db_pass=info.db_pass, db_name=boot.DB_NAME, addr=where.head_addr
        )
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


def _new_info(
    old: ClusterInfo | None,
    specs: Sequence[NodeSpec],
    ports: Ports,
    policy: str | os.PathLike[str] | None,
    users: Iterable[str],
    private_data: bool,
    hosts: bool,
) -> ClusterInfo:
    """What ``up`` decided; the users and the DB password of an earlier boot are kept."""
    return ClusterInfo(
        cluster_name="sandfill",
        host=socket.gethostname(),
        nodes=len(specs),
        cpus=max(n.cpus for n in specs),
        memory_mb=min(n.memory_mb for n in specs),
        ports=asdict(ports),
        policy=str(Path(policy).absolute()) if policy else None,
        users=sorted({"root", *_invoking_users(), *users, *(old.users if old else [])}),
        private_data=private_data,
        db_pass=old.db_pass if old and old.db_pass else secrets.token_hex(12),
        shape="hosts" if hosts else "single-host",
        node_specs=[asdict(n) for n in specs] if hosts else [],
    )


def _node_specs(
    nodes: int, cpus: int, memory_mb: int, hosts: bool, node_classes: NodeClasses | None
) -> list[NodeSpec]:
    """The nodes to declare: ``node_classes`` (``--hosts`` only) or the single host's
    ``nodes`` alike ones."""
    if node_classes is not None and not hosts:
        raise DevClusterError("node classes (--node-class / --node-classes) need --hosts")
    if hosts:
        return nodeclasses.nodes_of(node_classes or nodeclasses.DEFAULT_HOSTS)
    if nodes < 1 or nodes > 64:
        raise DevClusterError(f"--nodes must be between 1 and 64, got {nodes}")
    if cpus < 1 or cpus > 256:
        raise DevClusterError(f"--cpus must be between 1 and 256, got {cpus}")
    return nodeclasses.uniform(nodes, cpus=cpus, memory_mb=memory_mb)


def _check_can_start(specs: Sequence[NodeSpec], hosts: bool) -> None:
    """Everything a boot needs, checked before anything is made (nothing to clean up)."""
    problems = missing_requirements()
    if hosts:
        problems += netns.missing()  # root is missing_requirements' first question
    if problems:
        raise DevClusterError("cannot start the devcluster:\n  - " + "\n  - ".join(problems))


def _invoking_users() -> list[str]:
    users = []
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        v = os.environ.get(var)
        if v:
            users.append(v)
    return users
