"""Render the devcluster's configuration files (everything but the policy fragment)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandfill.dev.devcluster.nodeclasses import NodeSpec
from sandfill.files import private_dir, write_private


@dataclass(frozen=True)
class Ports:
    slurmctld: int
    slurmdbd: int
    mariadb: int
    nodes: tuple[int, ...]


@dataclass(frozen=True)
class Layout:
    """Where everything of one devcluster lives, under its state directory."""

    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

    @property
    def policy_conf(self) -> Path:
        return self.etc / "policy.conf"

    @property
    def gres_conf(self) -> Path:
        return self.etc / "gres.conf"

    @property
    def gpu_devices(self) -> Path:
        """Stand-in device files of the nodes' GPUs (``dev/<node>/nvidia<i>``)."""
        return self.root / "dev"

    @property
    def network(self) -> Path:
        """The ``--hosts`` shape's namespaces, bridge and subnet (saved before they are made)."""
        return self.root / "network.json"

    @property
    def slurmdbd_conf(self) -> Path:
        return self.etc / "slurmdbd.conf"

    @property
    def munge_key(self) -> Path:
        return self.etc / "munge.key"

    @property
    def munge_socket(self) -> Path:
        return self.root / "run" / "munge.socket"

    @property
    def mariadb_socket(self) -> Path:
        return self.root / "run" / "mariadb.sock"

    @property
    def mariadb_data(self) -> Path:
        return self.root / "mariadb"

    @property
    def mariadb_tmp(self) -> Path:
        """MariaDB's own tmpdir (never the shared /tmp: concurrent boots collided there)."""
        return self.root / "mariadb-tmp"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def state(self) -> Path:
        return self.root / "ctld-state"

    @property
    def pids(self) -> Path:
        return self.root / "daemons.json"

    @property
    def info(self) -> Path:
        return self.root / "cluster.json"


#: how long a port handed out by :func:`free_ports` stays claimed (its daemon binds it sooner)
CLAIM_SECONDS = 600.0


def claims_dir() -> Path:
    """Where the ports handed out lately are recorded, one directory per user (made ours
    and private, never a symlink): ``SANDFILL_PORT_CLAIMS_DIR`` or ``/tmp/sandfill-ports-UID``."""
    default = Path(tempfile.gettempdir()) / f"sandfill-ports-{os.geteuid()}"
    return Path(os.environ.get("SANDFILL_PORT_CLAIMS_DIR") or default)


def free_ports(n: int, avoid: set[int] | None = None) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (kernel-chosen) and not handed
    to anyone else in the last :data:`CLAIM_SECONDS`: devclusters and hubs booting at the
    same moment (threads or processes) never get the same port between choosing it and
    binding it. The claims are a small file under an exclusive lock in :func:`claims_dir`."""
    with claimed("claims.json") as claims:
        ports = _kernel_ports(n, set(avoid or ()) | set(claims))
        claims.update((p, time.time() + CLAIM_SECONDS) for p in ports)
    return ports


@contextlib.contextmanager
def claimed(name: str) -> Iterator[dict[int, float]]:
    """The live claims of file ``name`` in :func:`claims_dir` (number → expiry time), under
    the one exclusive lock of all claims; what the caller adds is saved on exit. Ports and
    the ``--hosts`` shape's subnets (:mod:`sandfill.dev.devcluster.netns`) are claimed so."""
    folder = private_dir(claims_dir(), 0o700)
    with open(folder / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = time.time()
        claims = {p: t for p, t in _read_claims(folder / name).items() if t > now}
        yield claims
        write_private(folder / name, json.dumps({str(p): t for p, t in claims.items()}))


def _read_claims(path: Path) -> dict[int, float]:
    try:
        raw = json.loads(path.read_text())
        return {int(p): float(t) for p, t in raw.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}  # none yet, or unreadable: the kernel's choice still holds


def _kernel_ports(n: int, avoid: set[int]) -> list[int]:
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in avoid and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


@dataclass(frozen=True)
class Placement:
    """Where the daemons listen: the head's address (slurmctld, slurmdbd) and each node's
    ``NodeHostname``/``NodeAddr``; the single-host shape has everything on 127.0.0.1."""

    host: str
    head_addr: str
    node_addrs: tuple[str, ...]
    node_hostnames: tuple[str, ...]


def _node_line(n: NodeSpec, *, hostname: str, addr: str, port: int) -> str:
    extra = ""
    if n.features:
        extra += f" Feature={','.join(n.features)}"
    if n.gpus:
        extra += f" Gres=gpu:{n.gpus}"
    return (
        f"NodeName={n.name} NodeHostname={hostname} NodeAddr={addr} Port={port} "
        f"CPUs={n.cpus} RealMemory={n.memory_mb}{extra} State=UNKNOWN"
    )


def _node_lines(nodes: Sequence[NodeSpec], ports: Ports, where: Placement) -> str:
    """One ``NodeName`` line per slurmd, each on its own port and address."""
    rows = zip(nodes, ports.nodes, where.node_addrs, where.node_hostnames, strict=True)
    return "\n".join(_node_line(n, hostname=h, addr=a, port=p) for n, p, a, h in rows)


def _gres_types(nodes: Sequence[NodeSpec]) -> str:
    if any(n.gpus for n in nodes):
        return "GresTypes=gpu"
    return "# GresTypes unset: no node has a GRES"


def gpu_files(layout: Layout, node: NodeSpec) -> list[Path]:
    return [layout.gpu_devices / node.name / f"nvidia{i}" for i in range(node.gpus)]


def render_gres_conf(layout: Layout, nodes: Sequence[NodeSpec]) -> str:
    """gres.conf: one line per node with GPUs. There are no GPUs here, but Slurm 22.05 drops a
    GPU without ``File=`` ("Removing file-less GPU gpu:(null) from final GRES list", and the
    node is drained: count reported 0 < 2) and wants a character device there: the files are
    stand-ins (:func:`sandfill.dev.devcluster.boot.gpu_stand_ins`)."""
    lines = [
        f"NodeName={n.name} Name=gpu File={layout.gpu_devices / n.name}/nvidia" + (f"[0-{n.gpus - 1}]" if n.gpus > 1 else "0")
        for n in nodes
        if n.gpus
    ]
    return "# Written by `sandfill devcluster up`.\n" + "".join(line + "\n" for line in lines)


def _privacy_line(private_data: bool) -> str:
    if private_data:
        return "PrivateData=jobs,usage,users"
    return "# PrivateData unset: every user sees every job (--shared-queue)"


def render_slurm_conf(
    layout: Layout,
    *,
    cluster_name: str,
    ports: Ports,
    nodes: Sequence[NodeSpec],
    where: Placement,
    private_data: bool = True,
) -> str:
    """slurm.conf; with ``private_data`` users see only their own jobs, usage and
    associations (``PrivateData``), as a site with untrusted users would set it."""
    node_lines = _node_lines(nodes, ports, where)
    r = layout
    return f"""\
# Written by `sandfill devcluster up`; the scheduling policy is in {r.policy_conf.name}.
ClusterName={cluster_name}
SlurmctldHost={where.host}({where.head_addr})
SlurmctldPort={ports.slurmctld}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={r.munge_socket}
CryptoType=crypto/munge
StateSaveLocation={r.state}
SlurmdSpoolDir={r.spool}/%n
SlurmctldPidFile={r.root}/run/slurmctld.pid
SlurmdPidFile={r.root}/run/slurmd-%n.pid
SlurmctldLogFile={r.log}/slurmctld.log
SlurmdLogFile={r.log}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MailProg=/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=20
MessageTimeout=10
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost={where.head_addr}
AccountingStoragePort={ports.slurmdbd}
# the munge socket used for the slurmdbd connection (Slurm reads it from here)
AccountingStoragePass={r.munge_socket}
AccountingStorageEnforce=associations,limits,qos
JobCompType=jobcomp/none
{_gres_types(nodes)}
{_privacy_line(private_data)}
{node_lines}
Include {r.policy_conf}
"""


def render_slurmdbd_conf(
    layout: Layout, *, ports: Ports, db_user: str, db_pass: str, db_name: str, addr: str = "127.0.0.1"
) -> str:
    r = layout
    return f"""\
# Written by `sandfill devcluster up`.
AuthType=auth/munge
AuthInfo=socket={r.munge_socket}
DbdHost=localhost
DbdAddr={addr}
DbdPort={ports.slurmdbd}
SlurmUser=root
LogFile={r.log}/slurmdbd.log
PidFile={r.root}/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports.mariadb}
StorageUser={db_user}
StoragePass={db_pass}
StorageLoc={db_name}
"""


def render_mariadb_cnf(layout: Layout, *, port: int) -> str:
    r = layout
    return f"""\
[mariadbd]
datadir={r.mariadb_data}
tmpdir={r.mariadb_tmp}
socket={r.mariadb_socket}
port={port}
bind-address=127.0.0.1
pid-file={r.root}/run/mariadb.pid
log-error={r.log}/mariadb.log
user=root
skip-name-resolve
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
innodb_lock_wait_timeout=900
max_allowed_packet=16M
"""
