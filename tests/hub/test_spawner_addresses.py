"""Where a server listens and where the hub reaches it, without a hub or Slurm: its node's
address from slurm.conf (``node_addresses: slurm``) or the site's map, and a listen URL the
job points at its node's address toward the hub (no loopback special case)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from sandfill.hub.config import apply_site
from sandfill.hub.site import SiteError, site_from_dict
from sandfill.hub.submit import SpawnFailed
from sandfill.slurm import JobStatus

from .test_spawner import CHOICES_REQUEST, spawner

CONF = "ClusterName=t\nNodeName=cpu[1-2] NodeAddr=198.18.7.2,198.18.7.3 CPUs=8\nNodeName=gpu1 NodeAddr=198.18.7.5\n"


def running_on(node: str, **kwargs: Any) -> Any:
    conf = kwargs.pop("slurm_conf", None)
    sp = spawner(**kwargs)
    if conf:
        sp.slurm_conf = conf
    sp.job_id = "42"
    sp.slurm_status = JobStatus("42", "RUNNING", exec_host=node)
    return sp


def test_the_hub_reaches_a_server_at_its_nodes_address(tmp_path: Path) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text(CONF)
    assert running_on("cpu2", slurm_conf=str(conf), exec_host_from_slurm=True).state_gethost() == "198.18.7.3"
    # a site's own map comes first; without either, the node's name (DNS)
    assert running_on("cpu2", slurm_conf=str(conf), exec_host_from_slurm=True, exec_host_map={"cpu2": "10.1.1.2"}).state_gethost() == "10.1.1.2"
    assert running_on("cpu2", slurm_conf=str(conf)).state_gethost() == "cpu2"
    with pytest.raises(SpawnFailed, match=r"job 42 runs on 'cpu2', whose address is not known: cannot read .*nope"):
        running_on("cpu2", slurm_conf=str(tmp_path / "nope"), exec_host_from_slurm=True).state_gethost()


def test_the_server_listens_on_its_nodes_address_toward_the_hub(tmp_path: Path) -> None:
    sp = spawner()
    script = sp.render_script(CHOICES_REQUEST, asyncio.run(sp._home()))
    lines = script.splitlines()
    assert lines[-1].startswith("exec ")  # the server still starts last
    assert "-m sandfill.net url \"$JUPYTERHUB_SERVICE_URL\" --toward \"$JUPYTERHUB_API_URL\"" in lines[-4]
    assert lines[-3] == 'export JUPYTERHUB_SERVICE_URL="$sandfill_url"'
    # the lines as bash runs them: the listen URL's host becomes the address toward the hub
    probe = "\n".join([*lines[-4:-1], 'echo "$JUPYTERHUB_SERVICE_URL"'])
    env = {**os.environ, "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/user/root/", "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "http://127.0.0.1:0/user/root/"
    env["JUPYTERHUB_API_URL"] = "http://no-such-hub.invalid:8081/hub/api"  # no route: the job ends, saying why
    bad = subprocess.run(["bash", "-euo", "pipefail", "-c", probe], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "'no-such-hub.invalid' does not resolve" in bad.stderr
    # a site that names server_ip gets exactly that
    fixed = spawner(bind_node_address=False)
    assert "sandfill.net" not in fixed.render_script(CHOICES_REQUEST, asyncio.run(fixed._home()))


def test_the_site_file_says_how_nodes_are_reached(tmp_path: Path) -> None:
    def spawner_config(**raw: Any) -> Any:
        c = Config()
        apply_site(c, site_from_dict({"state_dir": str(tmp_path), **raw}))
        return c.BackfillSlurmSpawner

    s = spawner_config(node_addresses="slurm")
    assert s.exec_host_from_slurm is True and "ip" not in s and "bind_node_address" not in s
    s = spawner_config(node_addresses={"cpu1": "10.0.1.11"}, server_ip="10.0.1.11")
    assert s.exec_host_map == {"cpu1": "10.0.1.11"} and s.ip == "10.0.1.11" and s.bind_node_address is False
    assert "exec_host_from_slurm" not in spawner_config()
    for bad, words in (("dns", "node_addresses: 'dns' is neither 'slurm' nor a map"), ({"cpu1": "10.0.0.1; rm -rf /"}, "cpu1: '10.0.0.1; rm -rf /' is not a host name"), ({"bad name!": "10.0.0.1"}, "'bad name!' is not a Slurm name")):
        with pytest.raises(SiteError) as err:
            site_from_dict({"state_dir": str(tmp_path), "node_addresses": bad})
        assert words in str(err.value), str(err.value)
