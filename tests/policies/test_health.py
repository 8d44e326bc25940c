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

from sandfill.cli import main
from sandfill.dev.testing import TestSlurm, sleep_script
from sandfill.policies.document.load import load_policy
from sandfill.policies.document.model import ClusterShape
from sandfill.policies.health import (
    Health,
    HealthUnavailable,
    health_text,
    prometheus_text,
    read_windows,
    render_health,
    window_health,
)
from sandfill.slurm import sacctmgr
from sandfill.slurm.commands import Result, Runner, wait_until
from sandfill.slurm.sacct import ACCOUNTING_FORMAT, accounting_argv, parse_accounting

ROOT = Path(__file__).parents[1]
RECORDED = (ROOT / "slurm" / "data" / "sacct_accounting.txt").read_text()
BASE = ROOT / "data" / "devcluster-policy.yaml"
POLICY = load_policy(BASE)
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
    assert "Dask workers: 2 job(s), 4 core-hours, 4 of them started by backfill" in text
    assert w.other_partitions == () and "no tier of the live policy" not in text
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
    assert waits[("interactive", "max", "accounting")] == 10.0
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
        read_windows(fake, [1, 7])
    assert "now-1days" in str(exc.value) and len(fake.calls) == 1  # stops at the first failure


def test_a_partition_the_live_policy_has_no_tier_for_is_named() -> None:
    text = RECORDED.replace("|burst|", "|debug|")
    w = window_health(text, 1, POLICY, SHAPE)
    assert "debug" in w.tiers and "debug" not in w.predicted and w.other_partitions == ("debug",)
    assert "no tier of the live policy for partition(s) debug" in health_text(Health(POLICY.name, [w]))


def test_without_a_valid_live_policy_tiers_are_partitions_and_nothing_is_predicted() -> None:
    w = window_health(RECORDED, 1, None, SHAPE)
    assert set(w.tiers) == {"interactive", "batch", "burst"} and w.predicted == {}
    assert w.workers.jobs == 2  # by name
    assert w.workers.sim_delay_mean is None


# ---- live: `policy health` on the private devcluster's own sacct -----------------------------


def _burst(conf: str, client: TestSlurm) -> set[str]:
    """Eight 2-second batch jobs of 8 CPUs (4 x 8 CPUs: half of them wait), two Dask-worker
    named jobs in burst and a notebook job; returned once sacct has them all as ended."""
    out = "/dev/null"
    ids = {client.submit_sync(sleep_script(2), ["-p", "batch", "-n", "8", "-t", "1", "-o", out])
           for _ in range(8)}
    ids |= {client.submit_sync(sleep_script(2), ["-p", "burst", "-n", "2", "-t", "1", "-o", out,
                                                 "-J", "sandfill-worker-health"]) for _ in range(2)}
    ids.add(client.submit_sync(sleep_script(1), ["-p", "interactive", "-n", "1", "-t", "1",
                                                 "-o", out, "-J", "jupyterhub-sftest"]))
    runner = Runner(conf)

    def recorded() -> bool:
        rows = parse_accounting(runner.check(accounting_argv("now-1hour")))
        return ids <= {str(j.row.job_id) for j in rows if j.row.ran and j.how}

    wait_until("sacct to record the burst as run", recorded, timeout=120)
    return ids


@pytest.mark.slurm
def test_health_on_the_devclusters_own_sacct_after_a_burst(
    conf: str, client: TestSlurm, tmp_path: Path, capsys
) -> None:
    assert main(["policy", "apply", str(BASE), "--slurm-conf", conf, "--yes", "--no-simulate"]) == 0
    _burst(conf, client)
    capsys.readouterr()
    report, prom = tmp_path / "health.html", tmp_path / "health.prom"
    rc = main(["policy", "health", "--days", "1", "--slurm-conf", conf, "--json",
               "--report", str(report), "--metrics", str(prom)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    w = json.loads(out.out)["windows"][0]
    assert w["days"] == 1 and w["started"] >= 11
    assert w["tiers"]["batch"]["jobs"] >= 8 and w["tiers"]["batch"]["max"] >= 1  # some waited
    assert w["predicted"]["batch"]["jobs"] >= 8
    assert w["flagged_starts"] >= 11  # every start carries sacct's Sched* flag
    assert w["notebooks"]["jobs"] >= 1 and w["workers"]["jobs"] >= 2
    assert w["workers"]["core_hours"] > 0
    fams = {f.name for f in text_string_to_metric_families(prom.read_text())}
    assert {"sandfill_job_wait_seconds", "sandfill_backfill_start_share"} <= fams
    assert "waits by tier, last 1 day(s)" in report.read_text()
    rc = main(["policy", "health", "--slurm-conf", conf])  # the default: a day and a week
    text = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{text}")
    assert rc == 0 and "last 1 day(s)" in text and "last 7 day(s)" in text
    assert "backfill share of starts:" in text and "not measurable from accounting" in text


@pytest.mark.slurm
def test_health_with_slurmdbd_stopped_is_a_clear_error(
    conf: str, private_cluster, tmp_path: Path, capsys
) -> None:
    report = tmp_path / "health.html"
    private_cluster.stop_daemon("slurmdbd")
    try:
        rc = main(["policy", "health", "--slurm-conf", conf, "--report", str(report),
                   "--metrics", "-"])
        out = capsys.readouterr()
    finally:
        private_cluster.start_daemon("slurmdbd")
        runner = Runner(conf)
        wait_until("slurmdbd to answer again",
                   lambda: runner(sacctmgr.show_clusters_argv()).returncode == 0, timeout=60)
    assert rc == 2
    assert "cannot read the accounting" in out.err and "is slurmdbd up" in out.err
    assert out.out == "" and not report.exists()  # no figure, no metrics, no page


@pytest.mark.browser
def test_the_health_page_renders_in_a_headless_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from sandfill.dev.testing import launch_chromium

    h = Health(POLICY.name, [window_health(EMPTY, 1, POLICY, SHAPE),
                             window_health(RECORDED, 7, POLICY, SHAPE)])
    page_file = tmp_path / "health.html"
    page_file.write_text(render_health(h), encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=30000)
            page.locator("canvas").first.wait_for(timeout=30000)
            sizes = page.evaluate(
                "() => { const out = []; const visit = (root) => { root.querySelectorAll('*')"
                ".forEach(el => { if (el.tagName === 'CANVAS') out.push([el.width, el.height]);"
                " if (el.shadowRoot) visit(el.shadowRoot); }); }; visit(document); return out; }")
            empty_said = page.get_by_text("no job started in this window").count()
        finally:
            browser.close()
    assert not errors, errors
    assert sum(1 for w, ht in sizes if w > 100 and ht > 100) >= 2, sizes  # waits + summary plots
    assert empty_said >= 1  # the empty day is a sentence, not a plot of zeros
