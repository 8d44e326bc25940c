"""What the site file adds to every job, on the real devcluster: a hub configured with the
jobs' Python environment, a prologue, a partition's and a profile's #SBATCH options and the
hub's connect URL spawns a server; inside it the prologue has run (past a variable that
``set -u`` would refuse), Slurm holds the options, the server called back through the URL,
and the user's Dask worker jobs would run the same prologue."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_hub import HUB_SECRETS, PROFILES, Hub, run_in_kernel

from sandfill.dev.accounts import create_accounts, is_ours, remove_accounts
from sandfill.dev.devcluster import DevCluster
from sandfill.dev.devcluster.config import free_ports
from sandfill.dev.hubprocess import HubProcess, user_token
from sandfill.dev.testing import TestSlurm
from sandfill.slurm.commands import wait_until

pytestmark = pytest.mark.slurm

USER = "sftest-site"
PYTHON_ENV = str(Path(sys.executable).parent.resolve().parent)
PROLOGUE = [
    "export SANDFILL_SITE_MARK=prologue-ran",
    'echo "sandfill test: site prologue ran (${SANDFILL_TEST_NEVER_SET})"',  # unset: set -u is paused
]


@contextlib.contextmanager
def hub_with(cluster: DevCluster, user: str, site: dict[str, Any], state: Path) -> Iterator[Hub]:
    """A hub of its own for ``user`` (an account made for it) on ``cluster``, from ``site``;
    afterwards the hub stopped, the user's jobs gone and the account removed."""
    logins = create_accounts([user])
    cluster.add_users([user])
    base = {"allowed_users": [user], "slurm_conf": str(cluster.slurm_conf), "max_memory": "8G", "poll_interval": "2s", "start_timeout": "5m"}
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    proc = HubProcess(state, {**base, **site}, env={"PATH": path, **HUB_SECRETS})
    proc.start()
    client = TestSlurm(cluster.slurm_conf)
    try:
        yield Hub(proc, {user: user_token(proc, user)}, logins, client)
    finally:
        proc.stop()
        client.cancel_user_sync(user)
        wait_until(f"{user}'s jobs to end", lambda: not client.user_job_ids_sync([user], check=False), timeout=60)
        wait_until(f"{user}'s account to be removed", lambda: (remove_accounts([user]), not is_ours(user))[1], timeout=30, interval=1)


@pytest.fixture(scope="module")
def site_hub(devcluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    (hub_port,) = free_ports(1)
    site = {
        "partitions": ["interactive"],
        "default_partition": "interactive",
        "node_addresses": "slurm",  # as the tests' hub: node names do not resolve (node1…)
        "hub_port": hub_port,
        "hub_connect_url": f"http://127.0.0.1:{hub_port}",
        "python_env": PYTHON_ENV,
        "prologue": PROLOGUE,
        "partition_settings": {"interactive": {"sbatch": ["--mail-type=END,FAIL"]}},
        "profiles": [{**PROFILES[0], "sbatch": ["--nice=5"]}],
    }
    with hub_with(devcluster, USER, site, tmp_path_factory.mktemp("site-hub")) as hub:
        yield hub


CELL = """
import json, os, subprocess, sys
import dask
from sandfill.dask.job import BackfillSLURMJob
show = subprocess.run(["scontrol", "show", "job", os.environ["SLURM_JOB_ID"]], capture_output=True, text=True).stdout
worker = BackfillSLURMJob(scheduler="tls://127.0.0.1:1", name="w", cores=1, security=None).job_script()
print(json.dumps({
    "mark": os.environ.get("SANDFILL_SITE_MARK"), "prefix": sys.prefix, "show": show, "worker": worker,
    "prologue": dask.config.get("jobqueue.sandfill.site-prologue", None), "api": os.environ.get("JUPYTERHUB_API_URL"),
}))
"""


def test_a_server_job_runs_with_the_sites_environment_prologue_and_options(site_hub: Hub) -> None:
    hub = site_hub
    job = hub.spawn(USER, {"profile": "small"})
    try:
        got = json.loads(run_in_kernel(hub, USER, CELL, timeout=120).strip().splitlines()[-1])
        assert got["mark"] == "prologue-ran"  # the prologue ran in the server's job, set -u paused
        assert got["prefix"] == PYTHON_ENV  # the kernel runs the site's Python environment
        assert got["api"] == f"{hub.proc.site['hub_connect_url']}/hub/api"  # the server called back through it
        show = got["show"]
        assert "MailType=END,FAIL" in show and "Nice=5" in show, show  # the partition's, then the profile's
        assert got["prologue"] == PROLOGUE  # what the user's Dask clusters read
        worker = got["worker"].splitlines()
        at = [worker.index(line) for line in PROLOGUE]
        assert at == sorted(at) and at[-1] < next(i for i, ln in enumerate(worker) if "distributed.cli.dask_worker" in ln)
        log = Path(pwd.getpwnam(USER).pw_dir, f"sandfill-jupyter-{job['job_id']}.log").read_text()
        assert "sandfill test: site prologue ran ()" in log, log
    finally:
        hub.stop(USER)


# ---- GPUs: the form offers a partition's GRES, and the server gets its GPU ---------------

GPU_USER = "sftest-gpu"


@pytest.fixture(scope="module")
def gpu_hub(devcluster_hosts: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub on the --hosts devcluster (gpu1 has gpu:2) whose site offers up to 2 GPUs on
    burst and none on interactive; configured as a site would (hub_connect_ip on the head's
    address, servers found at their NodeAddr)."""
    info = devcluster_hosts.info()
    assert info is not None and info.shape == "hosts"
    site = {
        "hub_ip": info.head_addr,
        "hub_connect_ip": info.head_addr,
        "node_addresses": "slurm",
        "partitions": ["interactive", "burst"],
        "default_partition": "interactive",
        "partition_settings": {"burst": {"gres": {"gpu": 2}}},
        "profiles": PROFILES[:1],
    }
    with hub_with(devcluster_hosts, GPU_USER, site, tmp_path_factory.mktemp("gpu-hub")) as hub:
        yield hub


GPU_CELL = """
import json, os
print(json.dumps({k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURMD_NODENAME")}))
"""


@pytest.mark.browser
def test_a_user_picks_one_gpu_on_the_gpu_partition_and_the_server_has_it(gpu_hub: Hub) -> None:
    from playwright.sync_api import sync_playwright

    from sandfill.dev.testing import launch_chromium

    hub = gpu_hub
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(hub.url + "/hub/login")
            page.fill("#username_input", GPU_USER)
            page.fill("#password_input", hub.passwords[GPU_USER])
            page.click("#login_submit")
            page.wait_for_function("() => !location.pathname.endsWith('/hub/login')")
            page.goto(hub.url + f"/hub/spawn/{GPU_USER}")
            page.wait_for_selector("#sandfill-availability")
            assert not page.is_visible("#sandfill-gres")  # interactive offers no GPU
            page.select_option("#sandfill-partition", "burst")
            assert page.is_visible("#sandfill-gres")
            shown = page.eval_on_selector_all("#sandfill-gres option", "os => os.filter(o => !o.hidden).map(o => o.value)")
            assert shown == ["", "gpu:1", "gpu:2"]
            page.select_option("#sandfill-gres", "gpu:1")
            page.fill("#sandfill-walltime", "30m")
            page.click("button[type=submit]")
            page.wait_for_url(f"**/user/{GPU_USER}/**", timeout=90_000)
        finally:
            browser.close()
    try:
        job = hub.job(GPU_USER)[1]
        assert job["request"]["gres"] == "gpu:1" and job["request"]["partition"] == "burst", job
        inside = json.loads(run_in_kernel(hub, GPU_USER, GPU_CELL, timeout=120).strip().splitlines()[-1])
        assert inside["SLURMD_NODENAME"] == "gpu1", inside
        assert inside["CUDA_VISIBLE_DEVICES"] and len(inside["CUDA_VISIBLE_DEVICES"].split(",")) == 1, inside
        assert inside["SLURM_JOB_GPUS"] is not None, inside
    finally:
        hub.stop(GPU_USER)
