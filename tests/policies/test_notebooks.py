"""The policy notebooks run top to bottom (nbclient, the venv's python3 kernel): the admin
walk-through on its own devcluster, the three-policy comparison on the Atlas trace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"


def _run(name: str, tmp_path: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=240, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


@pytest.mark.slurm
def test_admin_notebook(tmp_path: Path) -> None:
    state = Path("/tmp") / f"sandfill-nb-{os.getpid()}"
    state.mkdir(mode=0o755, exist_ok=True)
    try:
        nb = _run("policy-admin.ipynb", tmp_path, {"SANDFILL_NOTEBOOK_STATE_DIR": str(state)})
    finally:
        from sandfill.dev.devcluster import DevCluster

        DevCluster(state / "dc").down(log=lambda *_: None)  # if the notebook failed midway
        shutil.rmtree(state, ignore_errors=True)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "verified" in text and "in force" in text
    assert "PartitionName=short" in text and "QoS=short" in text


def test_compare_notebook(tmp_path: Path) -> None:
    nb = _run("policy-compare.ipynb", tmp_path, {})  # its default: the repository's sample trace
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    html = [o for o in outputs if "application/vnd.bokehjs_exec.v0+json" in o.get("data", {})]
    assert len(html) >= 2  # two bokeh plots shown
    assert any("short jobs wait" in o.get("text", "") for o in outputs)
