"""Dask across hosts on the site-shaped devcluster (``up --hosts``): a notebook's kernel in a
server on one node runs a BackfillSLURMCluster whose workers run on two other nodes; they
compute over TLS, each worker on its own node's address, the scheduler on the server's.
Marked ``slurm`` (run under the live lock)."""

from __future__ import annotations

import json
import time

import pytest
from fixtures_hub import HOSTS_USER, Hub, run_in_kernel

from sandfill.dev.devcluster import DevCluster

pytestmark = pytest.mark.slurm

# the notebook cell: its functions are defined in the cell, so Dask sends them by value
CELL = r"""
import json, os
from distributed import Client
from sandfill.dask import BackfillSLURMCluster

me = os.environ["SLURMD_NODENAME"]
# whole-node worker jobs (8 CPUs), none on the server's node: two jobs, two other hosts
with BackfillSLURMCluster(queue="burst", cores=8, processes=1, memory="1G",
                          job_extra_directives=[f"--exclude={me}"]) as cluster:
    cluster.scale(jobs=2)
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=240)

        def square_where(x):
            import os
            return x * x, os.environ["SLURMD_NODENAME"]

        workers = sorted(client.scheduler_info()["workers"])
        futures = [client.submit(square_where, i, workers=[workers[i % 2]], pure=False) for i in range(20)]
        results = client.gather(futures)
        print(json.dumps({
            "server_node": me,
            "scheduler": cluster.scheduler_address,
            "workers": {w: client.run(lambda: os.environ["SLURMD_NODENAME"], workers=[w])[w] for w in workers},
            "total": sum(r[0] for r in results),
            "nodes_used": sorted({r[1] for r in results}),
        }))
"""


def test_workers_on_two_other_hosts_compute_for_a_notebook_on_a_third(hosts_hub: Hub, devcluster_hosts: DevCluster) -> None:
    addrs = devcluster_hosts.node_addresses()
    hosts_hub.spawn(HOSTS_USER, {"profile": "small"})
    try:
        t0 = time.monotonic()
        out = run_in_kernel(hosts_hub, HOSTS_USER, CELL, timeout=400)
        print(f"\ncross-host Dask cell: {time.monotonic() - t0:.1f} s")
    finally:
        hosts_hub.stop(HOSTS_USER)
    seen = json.loads(out.strip().splitlines()[-1])
    server = seen["server_node"]
    assert seen["scheduler"].startswith(f"tls://{addrs[server]}:"), seen  # TLS, on the server's node address
    assert seen["total"] == sum(i * i for i in range(20))
    nodes = set(seen["workers"].values())
    assert len(nodes) == 2 and server not in nodes and set(seen["nodes_used"]) == nodes, seen
    for worker, node in seen["workers"].items():  # each worker on its own node's address
        assert worker.startswith(f"tls://{addrs[node]}:"), seen
