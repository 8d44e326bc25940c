"""Variants on Dask: a LocalCluster's results equal the one-after-another run, each variant
once; a worker killed mid-sweep costs nothing (its variants are retried elsewhere)."""

from __future__ import annotations

import os
import signal

import pytest

from sandfill.policies.document.load import policy_from_yaml
from sandfill.policies.lab.run import SimSettings, TextBar, run_variants
from sandfill.policies.lab.spec import expand, read_spec
from sandfill.policies.sim.simulator import SimConfig

BASE = policy_from_yaml(
    "name: base\ntiers:\n  short: {max_walltime: '1:00:00', priority_tier: 10}\n"
    "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n"
    "priority: {type: multifactor, weights: {age: 1000}}\n"
    "scheduler: {backfill: {window: 10-00:00:00}}\n")


def variants(n_walltimes: int, loads: list[float]) -> list:
    knobs, _ = read_spec({"knobs": {
        "tiers.short.max_walltime": {"from": "30:00", "to": "4:00:00", "steps": n_walltimes},
        "priority.weights.age": [0, 5000]}}, BASE)
    return expand(knobs, loads, BASE)


def settings(workload) -> SimSettings:
    return SimSettings(SimConfig(nodes=workload.nodes, cpus_per_node=workload.cpus_per_node))


def test_a_local_cluster_gives_each_variant_once_and_the_serial_figures(atlas) -> None:
    wl = atlas.head(600)
    vs = variants(2, [1.0, 1.5])
    ticks: list[int] = []
    on_dask = run_variants(vs, wl, settings(wl), workers=2, progress=ticks.append)
    serial = run_variants(vs, wl, settings(wl), workers=0)
    assert sorted(on_dask) == sorted(v.name for v in vs) == sorted(serial)
    assert sum(ticks) == len(vs)
    assert len({r["worker"] for r in on_dask.values()}) == 2  # both workers took part
    drop = {"worker", "sim_seconds"}
    for name in serial:
        assert {k: v for k, v in on_dask[name].items() if k not in drop} == \
            {k: v for k, v in serial[name].items() if k not in drop}
    assert len({r["short.p95_wait"] for r in serial.values()}) > 1  # the knobs matter


def test_a_worker_lost_mid_sweep_is_retried_and_no_result_is_lost_or_doubled(atlas) -> None:
    import logging

    from distributed import Client, LocalCluster

    wl = atlas.head(3000)
    vs = variants(4, [2.0])
    killed: dict[str, list[str]] = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)

        def kill_once(_: int) -> None:
            if killed:
                return
            busy = {w: keys for w, keys in client.processing().items() if keys}
            victim = sorted(busy)[0]
            os.kill(pids[victim], signal.SIGKILL)  # a worker process this test started
            killed[victim] = [str(k) for k in busy[victim]]

        rows = run_variants(vs, wl, settings(wl), scheduler=cluster.scheduler_address,
                            progress=kill_once)
    assert killed, "the sweep ended before a worker could be killed"
    [(victim, lost)] = killed.items()
    assert sorted(rows) == sorted(v.name for v in vs)  # every variant exactly once (dict keys)
    assert lost, "the killed worker had variants in hand"
    for key in lost:
        name = key.split("-", 2)[2]
        assert rows[name]["worker"] != victim, f"{name} was not recomputed"
    expected = run_variants([v for v in vs if v.name in {k.split('-', 2)[2] for k in lost}],
                            wl, settings(wl), workers=0)
    for name, row in expected.items():
        assert rows[name]["short.p95_wait"] == row["short.p95_wait"]


def test_variant_names_must_be_unique(atlas) -> None:
    vs = variants(2, [1.0])
    with pytest.raises(ValueError, match="unique"):
        run_variants(vs + vs[:1], atlas.head(10), settings(atlas), workers=0)


def test_the_text_bar_counts_to_the_total(capsys) -> None:
    import io

    out = io.StringIO()
    bar = TextBar(4, out, width=8)
    for _ in range(4):
        bar.update()
    text = out.getvalue()
    assert "[##------] 1/4 variants" in text and text.endswith("4/4 variants 0s\n")


def test_a_variant_that_fails_is_its_own_row_and_the_others_go_on(atlas, monkeypatch) -> None:
    import sandfill.policies.lab.run as run

    real = run.evaluate
    vs = variants(2, [1.0])
    bad = vs[1].policy

    def flaky(policy, *a):
        if policy == bad:
            raise RuntimeError("simulator fell over")
        return real(policy, *a)

    monkeypatch.setattr(run, "evaluate", flaky)
    rows = run_variants(vs, atlas.head(100), settings(atlas), workers=0)
    assert rows[vs[1].name] == {"error": "RuntimeError: simulator fell over"}
    assert all("short.p95_wait" in rows[v.name] for v in vs if v is not vs[1])
