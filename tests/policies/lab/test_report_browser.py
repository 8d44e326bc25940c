"""The sweep report opens in a headless browser: a rendered plot per load, and a tapped
point opens its policy file (Debian chromium through Python playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.dev.testing import launch_chromium
from sandfill.policies.document.load import policy_from_yaml
from sandfill.policies.lab.report import write_report
from sandfill.policies.lab.results import write_results
from sandfill.policies.lab.spec import expand, read_spec

pytestmark = pytest.mark.browser

BASE = policy_from_yaml("name: base\ntiers:\n  short: {max_walltime: '1:00:00'}\n"
                        "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n")


def test_the_sweep_report_renders_and_a_point_opens_its_policy_file(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    knobs, _ = read_spec({"knobs": {"tiers.short.max_walltime": ["30:00", "1h", "2h"]}}, BASE)
    vs = expand(knobs, [1.0, 2.0], BASE)
    figures = {v.name: {"short.p95_wait": 600.0 * (i % 3 + 1), "long.mean_wait": 3600.0 * (3 - i % 3),
                        "utilization": 0.4 + 0.1 * i} for i, v in enumerate(vs)}
    table = tmp_path / "sweep" / "results.csv"
    table.parent.mkdir()
    rows = write_results(vs, figures, table)
    report = write_report(tmp_path / "report.html", rows, [k.path for k in knobs], table_dir=table.parent)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(Path(report).as_uri())
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=30000)
            page.locator("canvas").first.wait_for(timeout=30000)
            sizes = page.evaluate(
                "() => { const out = []; const visit = (root) => { root.querySelectorAll('*')"
                ".forEach(el => { if (el.tagName === 'CANVAS') out.push([el.width, el.height]);"
                " if (el.shadowRoot) visit(el.shadowRoot); }); }; visit(document); return out; }")
            links = page.locator("table.front a").evaluate_all("els => els.map(e => e.href)")
            # a tap runs the TapTool's OpenURL on the selected point: record what it opens
            tapped = page.evaluate(
                "() => { const opened = []; window.open = (u) => { opened.push(u); return null; };"
                " const models = [...Bokeh.documents[0]._all_models.values()];"
                " const tap = models.find(m => m.type === 'TapTool');"
                " const src = models.find(m => m.type === 'ColumnDataSource');"
                " src.selected.indices = [0]; tap.callback.execute(null, {source: src});"
                " return opened.map(u => new URL(u, document.baseURI).href); }")
        finally:
            browser.close()
    assert not errors, errors
    assert sum(1 for w, h in sizes if w > 300 and h > 300) >= 2, sizes  # one plot per load
    assert links and all(link.startswith("file://") and link.endswith(".yaml") for link in links)
    for link in links:
        assert Path(link.removeprefix("file://")).is_file()
    assert len(tapped) == 1 and tapped[0].endswith("/sweep/results-policies/base-v0001.yaml"), tapped
    assert "name: base-v0001" in Path(tapped[0].removeprefix("file://")).read_text()
