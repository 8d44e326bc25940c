"""sandfill.dask.widget: the job table the notebook widget and the cluster's HTML repr show,
from the same model as the lab panel."""

from __future__ import annotations

from typing import Any

from sandfill.dask.model import worker_job
from sandfill.dask.widget import LocalSource, jobs_table_html
from sandfill.slurm import JobStatus

NOW = 1_800_000_000.0


def model(*jobs: Any, **kw: Any) -> dict[str, Any]:
    return {"name": "c", "workers": 1, "target": {"mode": "scale", "n": 2}, "jobs": [j.to_dict() for j in jobs], "now": NOW, **kw}


def test_rows_say_state_and_why() -> None:
    html = jobs_table_html(
        model(
            worker_job("1", JobStatus("1", "RUNNING", nodes="node1", end_time=NOW + 125, time_limit=600), workers=["w-1"], now=NOW),
            worker_job("2", JobStatus("2", "PENDING", reason="Priority", start_time=NOW + 60), workers=[], now=NOW),
            worker_job("3", JobStatus("3", "TIMEOUT"), workers=[], now=NOW),
            worker_job(None, None, workers=[], now=NOW, submitting_reason="WaitingForGap"),
            waiting_reason="no gap <now>",
        )
    )
    assert html.count("class='sandfill-job'") == 4 and "00:02:05 left" in html
    assert "other jobs are ahead in the queue · in 00:01:00" in html  # the one job view's words
    assert "reached its walltime" in html and "waiting for a gap in the schedule" in html
    assert "1 workers · 1 ended · 2 pending · 1 running (target: scale 2)" in html
    assert "no gap &lt;now&gt;" in html  # escaped


def test_a_failed_scancel_is_shown_until_it_is_settled() -> None:
    owed = [{"job_id": "7", "error": "Socket timed out <x>", "tries": 2}]
    html = jobs_table_html(model(cancels_owed=owed))
    assert "job 7: scancel failed (Socket timed out &lt;x&gt;); trying again" in html
    assert "scancel failed" not in jobs_table_html(model())


class FakeCluster:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def model(self) -> dict[str, Any]:
        return model()

    def scale(self, n: int) -> None:
        self.calls.append(("scale", n))

    def adapt(self, minimum: int, maximum: int) -> None:
        self.calls.append(("adapt", (minimum, maximum)))


def test_local_source_drives_the_cluster() -> None:
    c = FakeCluster()
    src = LocalSource(c)
    src.scale(3)
    src.adapt(1, 4)
    assert c.calls == [("scale", 3), ("adapt", (1, 4))] and src.model()["name"] == "c"


def test_the_widgets_buttons_scale_and_adapt_the_cluster() -> None:
    """Scale and Adapt act on the cluster with the numbers typed; a refusal is shown in the
    widget, not swallowed. Each control has a class the browser test finds it by."""
    from sandfill.dask.widget import ClusterWidget

    c = FakeCluster()
    widget = ClusterWidget(LocalSource(c), interval=3600)
    try:
        widget.n.value = 3
        widget.scale_button.click()
        widget.lo.value, widget.hi.value = 1, 5
        widget.adapt_button.click()
        assert c.calls == [("scale", 3), ("adapt", (1, 5))] and widget.error.value == ""
        assert "sandfill-widget-adapt" in widget.adapt_button._dom_classes
        assert "sandfill-widget-min" in widget.lo._dom_classes and "sandfill-widget-scale" in widget.scale_button._dom_classes

        def refuse(minimum: int, maximum: int) -> None:
            raise ValueError(f"maximum: must be a whole number from 0 to 64, not {maximum} <x>")

        c.adapt = refuse  # type: ignore[method-assign]
        widget.adapt_button.click()
        assert "not 5 &lt;x&gt;" in widget.error.value
    finally:
        widget.close()
