"""``sandfill.dev.devcluster.netns`` without Slurm: ``up --hosts`` where namespaces cannot be
made is refused before anything is made; the names and subnets of parallel clusters never
collide; and ``down`` after a crash that left only the network (and a process in it) removes
all of it, the process stopped by its PID."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest

from sandfill.cli import main
from sandfill.dev.devcluster import DevCluster, boot, netns
from sandfill.slurm.commands import wait_until


def _ours() -> tuple[set[str], set[str]]:
    return {n for n in netns.namespaces() if n.startswith("sf-")}, {n for n in netns.links() if n.startswith("sf")}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _procs() -> set[int]:
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}


@pytest.mark.parametrize(
    ("hide", "named"),
    [
        ("ip", "--hosts needs the `ip` command (Debian package iproute2)"),
        ("nsenter", "--hosts needs the `nsenter` command"),
        ("root", "must be started as root"),
    ],
)
def test_hosts_without_what_namespaces_need_is_refused_and_nothing_is_left(
    hide: str, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find = boot.find
    monkeypatch.setattr(boot, "find", lambda cmd: None if cmd == hide else real_find(cmd))
    if hide == "root":
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
    before_net, before_procs = _ours(), _procs()
    state = tmp_path / "dc"
    assert main(["devcluster", "up", "--hosts", "--state-dir", str(state)]) == 2
    assert named in capsys.readouterr().err
    assert not state.exists()  # no state directory, no junk in it
    assert _ours() == before_net  # no namespace, veth or bridge
    started = [_cmdline(p) for p in _procs() - before_procs]
    assert not [c for c in started if str(state) in c]  # no process of this cluster


def test_names_come_from_the_state_dir_and_fit_the_kernel(tmp_path: Path) -> None:
    a, b = netns.tag_for(tmp_path / "a"), netns.tag_for(tmp_path / "b")
    assert a != b and netns.tag_for(tmp_path / "a") == a
    net = netns.Network(a, "198.18.9.0/24", ("cpu1", "cpu2", "bigmem1", "gpu1"))
    assert len({net.namespace(n) for n in net.nodes}) == 4 and all(len(net.veth(n)) <= 15 for n in net.nodes)
    assert len(net.bridge) <= 15 and net.head_addr == "198.18.9.1"
    assert [net.addr(n) for n in net.nodes] == ["198.18.9.2", "198.18.9.3", "198.18.9.4", "198.18.9.5"]
    assert net.exec_argv("gpu1", ["slurmd"])[-3:] == [f"--net=/run/netns/sf-{a}-gpu1", "--", "slurmd"]


def test_parallel_plans_get_disjoint_subnets_clear_of_the_hosts_networks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDFILL_PORT_CLAIMS_DIR", str(tmp_path / "claims"))
    nets = [netns.plan(tmp_path / f"c{i}", ["cpu1"]) for i in range(5)]
    subnets = [ipaddress.IPv4Network(n.subnet) for n in nets]
    assert len(set(subnets)) == 5 and all(s.subnet_of(netns.SUPERNET) for s in subnets)
    used = netns._used_networks()
    assert not any(s.overlaps(u) for s in subnets for u in used)
    assert len(json.loads((tmp_path / "claims" / "subnets.json").read_text())) == 5


def test_down_after_a_crash_removes_the_network_and_what_runs_in_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDFILL_PORT_CLAIMS_DIR", str(tmp_path / "claims"))
    c = DevCluster(tmp_path / "dc")
    c._make_dirs(["cpu1", "cpu2"])
    net = netns.plan(c.layout.root, ["cpu1", "cpu2"])
    netns.save(c.layout.network, net)  # as `up` does before making it; then the "crash"
    netns.create(net)
    stray = subprocess.Popen(net.exec_argv("cpu2", ["sleep", "600"]), start_new_session=True)
    try:
        wait_until("the stray process in its namespace", lambda: stray.pid in netns.pids_in(net.namespace("cpu2")), timeout=10)
        ns, links = _ours()
        assert {net.namespace("cpu1"), net.namespace("cpu2")} <= ns and {net.bridge, net.veth("cpu1")} <= links
        assert net.subnet in subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        messages: list[str] = []
        assert c.down(log=messages.append) is True
        assert stray.wait(10) == -9  # stopped by its PID, found by `ip netns pids`
        ns, links = _ours()
        assert not {net.namespace(n) for n in net.nodes} & ns
        assert not {net.bridge, *(net.veth(n) for n in net.nodes)} & links
        assert net.subnet not in subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        assert not c.layout.network.exists() and any("removed" in m for m in messages)
        assert c.down(log=messages.append) is False  # nothing left to do
    finally:
        stray.kill()
        netns.remove(net, log=lambda *_: None)


def test_a_boot_that_fails_after_the_network_was_made_removes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sandfill.dev.devcluster import cluster

    monkeypatch.setenv("SANDFILL_PORT_CLAIMS_DIR", str(tmp_path / "claims"))
    made: list[netns.Network] = []

    def failing_boot(self: DevCluster, *_args: object) -> None:
        net = netns.load(self.layout.network)
        assert net is not None and net.namespace("gpu1") in netns.namespaces()  # it was made
        made.append(net)
        raise cluster.DevClusterError("devcluster failed to start: slurmctld exited")

    monkeypatch.setattr(DevCluster, "_boot", failing_boot)
    c = DevCluster(tmp_path / "dc")
    with pytest.raises(cluster.DevClusterError, match="slurmctld exited"):
        c.up(hosts=True, log=lambda *_: None)
    (net,) = made
    assert not {net.namespace(n) for n in net.nodes} & netns.namespaces()
    assert not {net.bridge, *(net.veth(n) for n in net.nodes)} & netns.links()
    assert not c.layout.network.exists()
