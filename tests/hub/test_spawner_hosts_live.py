"""The hub on the site-shaped devcluster (``up --hosts``): a server runs in its compute
node's own network namespace, listens on that node's address only, and the hub reaches it
there, configured by nothing but a site file (``node_addresses: slurm``) and slurm.conf.
Marked ``slurm`` (run under the live lock)."""

from __future__ import annotations

import urllib.parse

import pytest
from fixtures_hub import HOSTS_USER, Hub

from sandfill.dev.devcluster import DevCluster, netns
from sandfill.dev.testing import TestSlurm

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

