"""The user notebook runs end to end against the devcluster."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from sandfill.dev.devcluster import DevCluster

pytestmark = pytest.mark.slurm
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "backfill-dask.ipynb"


def test_user_notebook_runs(devcluster: DevCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path.chmod(0o755)
    monkeypatch.setenv("SLURM_CONF", str(devcluster.slurm_conf))
    monkeypatch.setenv("DASK_JOBQUEUE__SANDFILL__SCHEDULER_OPTIONS", "{'host': '127.0.0.1', 'dashboard_address': '127.0.0.1:0'}")
    monkeypatch.setenv("DASK_JOBQUEUE__SANDFILL__SHARED_TEMP_DIRECTORY", str(tmp_path / "tls"))
    monkeypatch.setenv("DASK_JOBQUEUE__SANDFILL__LOG_DIRECTORY", str(tmp_path / "logs"))
    monkeypatch.setenv("DASK_JOBQUEUE__SANDFILL__MEMORY", "1GiB")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "mean of x + xᵀ: " in outputs and "AssertionError" not in outputs
    assert "s left" in outputs
    widget = nb.cells[1].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in widget and "sandfill-cluster-view" in widget["text/html"]
    assert os.listdir(tmp_path / "logs")  # worker jobs wrote their logs
