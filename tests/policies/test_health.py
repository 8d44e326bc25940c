"""Live health (sandfill.policies.health) on recorded sacct text: waits by tier beside the
simulator's, the backfill share from sacct's Flags, notebook starts, Dask workers' core-hours
and their (simulated) delay; no figures from an unreadable or empty accounting; the same
figures as Prometheus text. Live tests (marked ``slurm``) run ``policy health`` on the
private devcluster's own sacct after a burst of jobs, and with slurmdbd stopped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandfill.policies.document.load import load_policy
from sandfill.policies.document.model import ClusterShape
from sandfill.policies.health import (
    Health,
    HealthUnavailable,
    health,
    health_text,
    prometheus_text,
    render_health,
    window_health,
)
from sandfill.slurm.commands import Result, Runner
from sandfill.slurm.sacct import ACCOUNTING_FORMAT

ROOT = Path(__file__).parents[1]
RECORDED = (ROOT / "slurm" / "data" / "sacct_accounting.txt").read_text()
POLICY = load_policy(ROOT / "data" / "devcluster-policy.yaml")
SHAPE = ClusterShape(4, 8)
EMPTY = ACCOUNTING_FORMAT.replace(",", "|") + "\n"


def test_a_window_of_recorded_accounting() -> None:
    w = window_health(RECORDED, 1, POLICY, SHAPE)
    assert (w.jobs, w.started) == (7, 6)  # job 17's row is unreadable, job 18 is pending
    assert set(w.tiers) == {"interactive", "batch", "burst"}
    assert (w.tiers["interactive"].jobs, w.tiers["interactive"].median, w.tiers["interactive"].max) == (2, 6.0, 10.0)
    assert w.tiers["batch"].max == 6602.0  # job 14 waited for the full-machine job 13
    assert set(w.predicted) <= {"interactive", "batch", "burst"} and w.predicted["batch"].jobs == 2
    assert (w.backfill_starts, w.flagged_starts, w.backfill_share) == (2, 6, 2 / 6)
    assert w.notebooks is not None and (w.notebooks.jobs, w.notebooks.median) == (2, 6.0)
    k = w.workers
    assert (k.jobs, k.core_hours, k.backfill_core_hours) == (2, 4.0, 4.0)  # 2 x 4 CPUs x 30 min
    assert k.sim_delay_mean is not None and "not measurable from accounting" in k.measured_delay
    text = health_text(Health(POLICY.name, [w]))
    assert "backfill share of starts: 33% (2 of 6; sacct Flags SchedBackfill)" in text
    assert "Dask workers: 2 job(s), 4.00 core-hours, 4.00 of them started by backfill" in text
    assert "interactive" in text and "|" in text  # sacct beside the simulator


def test_an_empty_window_has_no_figures_not_zeros() -> None:
    empty = window_health(EMPTY, 1, POLICY, SHAPE)
    assert (empty.started, empty.tiers, empty.predicted, empty.notebooks) == (0, {}, {}, None)
    assert empty.backfill_share is None
    h = Health(POLICY.name, [empty, window_health(RECORDED, 7, POLICY, SHAPE)])
    assert "no job started in this window: no wait figures" in health_text(h)
    metrics = prometheus_text(h)
    assert 'window_days="1"' not in metrics.split("sandfill_dask_worker_core_hours")[0]
    page = render_health(h)
    assert "last 1 day(s)" in page and "waits by tier, last 7 day(s)" in page
    assert "waits by tier, last 1 day(s)" not in page  # no plot for the empty window


def test_the_figures_as_prometheus_text_and_json() -> None:
    h = Health(POLICY.name, [window_health(RECORDED, 7, POLICY, SHAPE)])
    fams = {f.name: f for f in text_string_to_metric_families(prometheus_text(h))}
    waits = {(s.labels["tier"], s.labels["stat"], s.labels["source"]): s.value
             for s in fams["sandfill_job_wait_seconds"].samples}
    assert waits[("interactive", "max", "sacct")] == 10.0
    assert ("batch", "p95", "simulated") in waits
    assert fams["sandfill_backfill_start_share"].samples[0].value == pytest.approx(1 / 3)
    assert {s.labels["stat"] for s in fams["sandfill_notebook_start_seconds"].samples} == {"median", "p95", "max"}
    core = {s.labels["started_by"]: s.value for s in fams["sandfill_dask_worker_core_hours"].samples}
    assert core == {"any": 4.0, "backfill": 4.0}
    assert "sandfill_dask_worker_delay_seconds" in fams
    data = json.loads(h.to_json())
    assert data["windows"][0]["tiers"]["interactive"]["max"] == 10.0
    assert data["backfill_share"]["7"] == pytest.approx(1 / 3)


class DownSacct(Runner):
    def __init__(self) -> None:
        super().__init__(None)
        self.calls: list[list[str]] = []

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.calls.append(list(argv))
        return Result(list(argv), 1, "", "sacct: error: Problem talking to the database: "
                                         "Connection refused")


def test_unreachable_accounting_is_an_error_not_zeros() -> None:
    fake = DownSacct()
    with pytest.raises(HealthUnavailable, match="Connection refused") as exc:
        health(fake, [1, 7], POLICY, SHAPE)
    assert "now-1days" in str(exc.value) and len(fake.calls) == 1  # stops at the first failure


def test_without_a_valid_live_policy_tiers_are_partitions_and_nothing_is_predicted() -> None:
    w = window_health(RECORDED, 1, None, SHAPE)
    assert set(w.tiers) == {"interactive", "batch", "burst"} and w.predicted == {}
    assert w.workers.jobs == 2  # by name
    assert w.workers.sim_delay_mean is None
