"""The hub on the site-shaped devcluster (``up --hosts``): a server runs in its compute
node's own network namespace, listens on that node's address only, and the hub reaches it
there, configured by nothing but a site file (``node_addresses: slurm``) and slurm.conf.
Marked ``slurm`` (run under the live lock)."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from fixtures_hub import HOSTS_USER, Hub

from sandfill.dev.devcluster import DevCluster, netns
from sandfill.dev.testing import TestSlurm
from sandfill.slurm.commands import wait_until

pytestmark = pytest.mark.slurm


def server_node(hub: Hub, user: str) -> str:
    (job_id,) = TestSlurm(hub.client.slurm_conf).user_job_ids_sync([user], states="RUNNING")
    node = hub.client.squeue_sync([job_id])[job_id].exec_host
    assert node, job_id
    return node


def route_target(hub: Hub, user: str) -> urllib.parse.SplitResult:
    """Where the hub's proxy sends ``user``'s server (the hub's REST API, ``GET /proxy``)."""
    status, routes = hub.api("GET", "/proxy", user)
    assert status == 200, routes
    (target,) = [r["target"] for r in routes.values() if (r.get("data") or {}).get("user") == user]
    return urllib.parse.urlsplit(target)


def listening(cluster: DevCluster, node: str, port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` inside ``node``'s namespace."""
    net = netns.load(cluster.layout.network)
    assert net is not None
    out = cluster.runner().check(net.exec_argv(node, ["ss", "-Hltn", f"sport = :{port}"]))
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def test_a_servers_url_in_the_hubs_api_is_its_nodes_address(hosts_hub: Hub, devcluster_hosts: DevCluster) -> None:
    hosts_hub.spawn(HOSTS_USER, {"profile": "small"})
    try:
        node = server_node(hosts_hub, HOSTS_USER)
        addr = devcluster_hosts.node_addresses()[node]
        assert addr.startswith("198.18.") and addr != devcluster_hosts.info().head_addr  # type: ignore[union-attr]
        target = route_target(hosts_hub, HOSTS_USER)
        assert (target.hostname, target.scheme) == (addr, "http"), target
        assert hosts_hub.reach(HOSTS_USER) == 200  # the user reaches it through the hub
        assert listening(devcluster_hosts, node, int(target.port or 0)) == {addr}  # not 0.0.0.0 nor *
    finally:
        hosts_hub.stop(HOSTS_USER)


def test_a_server_whose_host_dies_is_reported_ended_with_slurms_reason(hosts_hub: Hub, devcluster_hosts: DevCluster) -> None:
    """The server's host dies: its slurmd and every process below it killed by PID (the
    devcluster knows them). Slurm declares the node down and ends the job; the hub reports the
    server ended with Slurm's state, and the other hosts go on."""
    hosts_hub.spawn(HOSTS_USER, {"profile": "small"})
    node = server_node(hosts_hub, HOSTS_USER)
    (job_id,) = TestSlurm(hosts_hub.client.slurm_conf).user_job_ids_sync([HOSTS_USER], states="RUNNING")
    slurm = TestSlurm(devcluster_hosts.slurm_conf)
    assert devcluster_hosts.kill_node(node) >= 1
    t0 = time.monotonic()
    try:
        wait_until("the hub to report the server ended", lambda: hosts_hub.server(HOSTS_USER) is None, timeout=150, interval=1)
        print(f"\n{node} killed: the hub reported the server ended after {time.monotonic() - t0:.1f} s")
        status, job = hosts_hub.job(HOSTS_USER)
        assert status == 200, job
        end = job["last_end"]
        print(f"last_end: state={end['state']} reason={end['reason']} why={end['why']}")
        # NODE_FAIL once the node is declared down, or FAILED with a reason when the dead
        # stepd is noticed first: the hub reports what Slurm says
        assert end["job_id"] == job_id and end["stopped_by_hub"] is False, end
        assert end["state"] in {"NODE_FAIL", "FAILED"} and (end["state"] == "NODE_FAIL" or end["reason"]), end
        assert {n for n, st in slurm.idle_cpus_sync().items() if st} - {node}  # the other hosts still serve
    finally:
        devcluster_hosts.start_daemon(f"slurmd-{node}")
        slurm.resume_node_sync(node)
        wait_until(f"{node} back in service", lambda: slurm.node_state_sync(node) in {"idle", "mix", "alloc"}, timeout=60)
