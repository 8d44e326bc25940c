"""The network of a site-shaped devcluster (``devcluster up --hosts``): one network namespace
per compute node, each with its own address on a private bridge.

* The range is 198.18.0.0/15 (RFC 2544, benchmarking: no real network uses it; this machine's
  is 192.0.2.0/24). Each cluster claims one /24 of it, under the lock of the port claims
  (:func:`sandfill.dev.devcluster.config.claimed`), never one that an address or a route of
  this host already covers.
* The head (slurmctld, slurmdbd, MariaDB; the hub) stays in the host's namespace at ``.1``,
  on the bridge; node *i* is ``.(i+1)`` in namespace ``sf-<tag>-<node>`` through a veth pair
  (``sfv<tag>-<i>`` on the bridge, ``eth0`` inside). ``<tag>`` comes from the state
  directory's path, so parallel devclusters never share a name.
* Only the bridge, the veths and the namespaces made here are touched: no other interface,
  no route beyond the bridge's own /24, no forwarding, no firewall rule.
* The plan is saved in the state directory before anything is made, so ``down`` after a
  crash removes what was made (:func:`remove` is idempotent).

Every command is an argv list (``ip …``), never a shell.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sandfill.dev.devcluster import boot
from sandfill.dev.devcluster.config import claimed
from sandfill.files import write_private
from sandfill.slurm.commands import WaitTimeout, wait_until

SUPERNET = ipaddress.IPv4Network("198.18.0.0/15")
NETNS_DIR = "/run/netns"  # where `ip netns add` mounts a named namespace
CLAIM_SECONDS = 600.0  # until the bridge's address marks the subnet taken


class NetnsError(RuntimeError):
    """The namespaces could not be made or removed; the message says which command failed."""


def missing() -> list[str]:
    """What keeps this machine from making the namespaces, each with the fix (empty: nothing).
    Root, which they need too, is checked with the rest of the devcluster's needs."""
    problems = []
    if boot.find("ip") is None:
        problems.append("--hosts needs the `ip` command (Debian package iproute2), not found on PATH or in /usr/sbin, /sbin")
    if boot.find("nsenter") is None:
        problems.append("--hosts needs the `nsenter` command (Debian package util-linux), not found on PATH")
    if not Path("/proc/self/ns/net").exists():
        problems.append("--hosts needs network namespaces (/proc/self/ns/net is missing: a kernel without CONFIG_NET_NS)")
    return problems


@dataclass(frozen=True)
class Network:
    tag: str
    subnet: str
    nodes: tuple[str, ...]

    @property
    def bridge(self) -> str:
        return f"sfb{self.tag}"

    @property
    def head_addr(self) -> str:
        return str(ipaddress.IPv4Network(self.subnet)[1])

    @property
    def prefix(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    def addr(self, node: str) -> str:
        return str(ipaddress.IPv4Network(self.subnet)[self.nodes.index(node) + 2])

    def namespace(self, node: str) -> str:
        return f"sf-{self.tag}-{node}"

    def veth(self, node: str) -> str:
        return f"sfv{self.tag}-{self.nodes.index(node) + 1}"  # at most 15 characters

    def exec_argv(self, node: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``node``'s network namespace and nothing else: ``nsenter
        --net`` execs it (same PID). Not ``ip netns exec``, whose own mount namespace
        remounts /sys without /sys/fs/cgroup (slurmd then fails: "Unable to initialize
        cgroup plugin")."""
        return [boot.which("nsenter"), f"--net={NETNS_DIR}/{self.namespace(node)}", "--", *argv]


def tag_for(root: Path) -> str:
    return hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:6]


def plan(root: Path, nodes: Sequence[str]) -> Network:
    """Claim a free /24 for the cluster in ``root`` (:data:`CLAIM_SECONDS`, then its bridge's
    address holds it) and name its bridge, veths and namespaces."""
    if len(nodes) > 250:
        raise NetnsError(f"{len(nodes)} nodes do not fit in a /24")
    with claimed("subnets.json") as claims:
        used = _used_networks()
        for i, net in enumerate(SUPERNET.subnets(new_prefix=24)):
            if i not in claims and not any(net.overlaps(u) for u in used):
                claims[i] = time.time() + CLAIM_SECONDS
                return Network(tag_for(root), str(net), tuple(nodes))
    raise NetnsError(f"no free /24 left in {SUPERNET} (every one has an address, a route or a claim)")


def _used_networks() -> list[ipaddress.IPv4Network]:
    """The networks this host's addresses and routes cover (IPv4)."""
    out = []
    for entry in json.loads(ip("-j", "-4", "addr", "show").stdout or "[]"):
        for a in entry.get("addr_info", []):
            out.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for r in json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = r.get("dst", "default")
        if dst != "default" and not dst.startswith("fe80"):
            with contextlib.suppress(ValueError):
                out.append(ipaddress.IPv4Network(dst, strict=False))
    return out


def ip(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [boot.which("ip"), *args]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and res.returncode != 0:
        raise NetnsError(f"`{' '.join(argv)}` failed (exit {res.returncode}): {res.stderr.strip()}")
    return res


def save(path: Path, net: Network) -> None:
    write_private(path, json.dumps(asdict(net), indent=1), 0o644)


def load(path: Path) -> Network | None:
    try:
        raw = json.loads(path.read_text())
        return Network(raw["tag"], raw["subnet"], tuple(raw["nodes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def create(net: Network) -> None:
    """The bridge (head address), then per node a namespace, a veth pair into the bridge and
    the node's address; a failure raises :class:`NetnsError` (the caller removes the rest)."""
    ip("link", "add", net.bridge, "type", "bridge", check=True)
    ip("addr", "add", f"{net.head_addr}/{net.prefix}", "dev", net.bridge, check=True)
    ip("link", "set", net.bridge, "up", check=True)
    for node in net.nodes:
        ns, veth = net.namespace(node), net.veth(node)
        ip("netns", "add", ns, check=True)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns, check=True)
        ip("link", "set", veth, "master", net.bridge, check=True)
        ip("link", "set", veth, "up", check=True)
        ip("-n", ns, "addr", "add", f"{net.addr(node)}/{net.prefix}", "dev", "eth0", check=True)
        ip("-n", ns, "link", "set", "eth0", "up", check=True)
        ip("-n", ns, "link", "set", "lo", "up", check=True)


def namespaces() -> set[str]:
    """The named network namespaces of this host."""
    return {line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()}


def links() -> set[str]:
    return {e["ifname"] for e in json.loads(ip("-j", "link", "show").stdout or "[]")}


def pids_in(ns: str) -> list[int]:
    return [int(p) for p in ip("netns", "pids", ns).stdout.split() if p.isdigit()]


def remove(net: Network, log: Callable[[str], object] = print, timeout: float = 20.0) -> int:
    """Remove what :func:`create` made (whatever part of it exists). A namespace is deleted
    only once no process is left in it (``ip netns pids``): what is still there was started
    in it by this cluster (a job's stray process) and is SIGKILLed by PID. Returns how many."""
    killed = 0
    present = namespaces()
    for node in net.nodes:
        ns = net.namespace(node)
        if ns in present:
            killed += _empty(ns, timeout)
            ip("netns", "delete", ns, check=True)  # takes the veth pair with it
    ours = [net.veth(n) for n in net.nodes] + [net.bridge]
    for name in ours:
        res = ip("link", "delete", name)
        if res.returncode != 0 and name in links():  # else gone already (with its namespace)
            raise NetnsError(f"`ip link delete {name}` failed: {res.stderr.strip()}")
    try:  # a veth goes with its namespace, a moment later (the kernel's netns clean-up)
        wait_until("the veths and the bridge to go", lambda: not set(ours) & links(), timeout, interval=0.1)
    except WaitTimeout as exc:
        raise NetnsError(str(exc)) from None
    if killed:
        log(f"killed {killed} process(es) left in the namespaces")
    return killed


def _empty(ns: str, timeout: float) -> int:
    killed: set[int] = set()

    def none_left() -> bool:
        left = pids_in(ns)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        return not left

    try:
        wait_until(f"no process left in namespace {ns}", none_left, timeout, interval=0.1)
    except WaitTimeout as exc:
        raise NetnsError(str(exc)) from None
    return len(killed)
