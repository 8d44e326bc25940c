"""sandfill.hub.submit: what the site file adds to each server job -- its Python environment,
its prologue (also handed to the user's Dask worker jobs) and the #SBATCH options of a
partition and a profile -- from the site file through apply_site to the rendered script
(no hub or Slurm needed)."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from sandfill.hub.config import apply_site
from sandfill.hub.form import FormError, ResourceRequest
from sandfill.hub.site import site_from_dict
from sandfill.hub.spawner import BackfillSlurmSpawner
from sandfill.hub.submit import SITE_PROLOGUE_ENV
from sandfill.slurm.sinfo import PartitionInfo

PROLOGUE = ["module load python/3.11", "source /opt/site/env.sh", "conda activate /opt/conda/envs/jupyter"]
SITE: dict[str, Any] = {
    "partitions": ["interactive", "gpu"],
    "python_env": "/opt/sandfill/venv",
    "prologue": PROLOGUE,
    "partition_settings": {"gpu": {"sbatch": ["--constraint=a100&ib", "--qos=gpu"]}},
    "profiles": [
        {"name": "small", "cpus": 1, "memory": "2G", "walltime": "2h", "partition": "interactive"},
        {"name": "big", "cpus": 4, "memory": "8G", "walltime": "2h", "partition": "gpu", "sbatch": ["--exclusive", "--mail-type=END,FAIL"]},
    ],
}


def site_spawner(tmp_path: Path, site: dict[str, Any]) -> BackfillSlurmSpawner:
    c = Config()
    apply_site(c, site_from_dict({**site, "state_dir": str(tmp_path / "hub")}))
    user = SimpleNamespace(name="root", url="/user/root/", escaped_name="root")
    orm = SimpleNamespace(user_options=None, server=None, state={}, name="")
    return BackfillSlurmSpawner(config=c, user=user, hub=Hub(), api_token="t", orm_spawner=orm, db=SimpleNamespace(commit=lambda: None))


def script_for(sp: BackfillSlurmSpawner, request: ResourceRequest) -> list[str]:
    return sp.render_script(request, asyncio.run(sp._home())).splitlines()


def test_the_jobs_run_the_sites_python_environment_after_its_prologue(tmp_path: Path) -> None:
    sp = site_spawner(tmp_path, SITE)
    lines = script_for(sp, ResourceRequest("small", 1, 2048, 7200, "interactive"))
    exec_line = lines[-1]
    assert exec_line.startswith("exec /opt/sandfill/venv/bin/batchspawner-singleuser /opt/sandfill/venv/bin/jupyterhub-singleuser")
    assert "export PATH=/opt/sandfill/venv/bin:/usr/local/bin:/usr/bin:/bin" in lines
    at = [lines.index(line) for line in ["set -euo pipefail", "set +u", *PROLOGUE, "set -u"]]
    assert at == sorted(at) and at[-1] < len(lines) - 1  # in order, before the server starts
    # without the keys: the hub's own Python, no prologue
    plain = script_for(site_spawner(tmp_path, {}), ResourceRequest("custom", 1, 2048, 7200, "interactive"))
    assert "/opt/sandfill/venv" not in "\n".join(plain) and "set +u" not in plain


def test_the_prologue_reaches_the_users_dask_workers_through_the_jobs_environment(tmp_path: Path) -> None:
    """Named in sbatch's --export and passed in its environment: each kernel's dask reads it as
    jobqueue.sandfill.site-prologue (tests/dask/test_job.py renders the worker script)."""
    sp = site_spawner(tmp_path, SITE)
    env = sp._submit_env()
    assert ast.literal_eval(env[SITE_PROLOGUE_ENV]) == PROLOGUE
    lines = script_for(sp, ResourceRequest("small", 1, 2048, 7200, "interactive"))
    export = next(line for line in lines if line.startswith("#SBATCH --export="))
    assert SITE_PROLOGUE_ENV in export.split("=", 1)[1].split(",")
    assert SITE_PROLOGUE_ENV not in site_spawner(tmp_path, {})._submit_env()


def test_a_partitions_and_a_profiles_sbatch_options_reach_only_their_jobs(tmp_path: Path) -> None:
    sp = site_spawner(tmp_path, SITE)
    gpu_big = [ln for ln in script_for(sp, ResourceRequest("big", 4, 8192, 7200, "gpu")) if ln.startswith("#SBATCH")]
    site_lines = ["#SBATCH --constraint=a100&ib", "#SBATCH --qos=gpu", "#SBATCH --exclusive", "#SBATCH --mail-type=END,FAIL"]
    assert gpu_big[-len(site_lines):] == site_lines  # after sandfill's own lines: partition's, then profile's
    custom_gpu = script_for(sp, ResourceRequest("custom", 1, 1024, 3600, "gpu"))
    assert "#SBATCH --qos=gpu" in custom_gpu and "#SBATCH --exclusive" not in custom_gpu
    small = "\n".join(script_for(sp, ResourceRequest("small", 1, 2048, 7200, "interactive")))
    assert not any(line in small for line in site_lines)


class _View:
    """The scheduler's answers the form needs (partitions, associations), without Slurm."""

    async def safe(self, coro: Any, default: Any) -> tuple[Any, None]:
        return await coro, None

    async def partitions(self) -> dict[str, PartitionInfo]:
        return {name: PartitionInfo(name, True, 8 * 3600, 8, 4, 0, 32, 32, 16000) for name in ("interactive", "gpu")}

    async def associations(self, user: str) -> list[Any]:
        return []


def test_a_sites_gres_reaches_the_form_and_the_script_on_its_partition_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BackfillSlurmSpawner, "view", property(lambda self: _View()))
    sp = site_spawner(tmp_path, {**SITE, "partition_settings": {"gpu": {"gres": {"gpu": 2}}}})
    choices = asyncio.run(sp.choices())
    assert choices.gres == {"gpu": {"gpu": 2}}
    request = asyncio.run(sp.apply_request({"profile": "custom", "cpus": 1, "memory": "1G", "walltime": "1h", "partition": "gpu", "gres": "gpu:1"}))
    assert "#SBATCH --gres=gpu:1" in script_for(sp, request)
    with pytest.raises(FormError) as exc:
        asyncio.run(sp.apply_request({"profile": "small", "gres": "gpu:1"}))
    assert exc.value.field == "gres" and "not offered on interactive" in str(exc.value)
    assert sp.request is None and sp.user_options == {}  # refused: nothing kept
