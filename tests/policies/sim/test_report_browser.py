"""The `policy simulate --report` HTML opens in a headless browser with its bokeh plots
rendered (Debian chromium through Python playwright; nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.cli import main
from sandfill.dev.testing import launch_chromium

pytestmark = pytest.mark.browser


def test_report_plots_render(tmp_path: Path, traces_dir: Path, capsys) -> None:
    from playwright.sync_api import sync_playwright

    single = tmp_path / "single.yaml"
    single.write_text("name: single\ntiers: {batch: {max_walltime: 10-00:00:00}}\n"
                      "roles: {default: batch}\npriority: {type: multifactor}\n")
    short = tmp_path / "short.yaml"
    short.write_text("name: short\ntiers:\n  debug: {max_walltime: '30:00', priority_tier: 10}\n"
                     "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n"
                     "priority: {type: multifactor}\n")
    report = tmp_path / "report.html"
    rc = main(["policy", "simulate", str(single), "--vs", str(short), "--trace",
               str(traces_dir / "LLNL-Atlas-2006-2.1-cln.first8000.swf.gz"), "--limit", "2000",
               "--report", str(report)])
    assert rc == 0, capsys.readouterr().err
    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.as_uri())
            page.wait_for_function(
                "() => window.Bokeh && Bokeh.documents.length > 0 && "
                "document.querySelectorAll('*').length > 0", timeout=30000)
            # plots render into (open) shadow roots: playwright's CSS selectors pierce them
            page.locator("canvas").first.wait_for(timeout=30000)
            n_canvas = page.locator("canvas").count()
            figures = page.evaluate(
                "() => Bokeh.documents[0].roots().flatMap(function walk(m) {"
                " const kids = (m.children || []).map(c => Array.isArray(c) ? c[0] : c);"
                " return [m.type, ...kids.flatMap(walk)]; })")
            sizes = page.evaluate(
                "() => { const out = []; const visit = (root) => { root.querySelectorAll('*')"
                ".forEach(el => { if (el.tagName === 'CANVAS') out.push([el.width, el.height]);"
                " if (el.shadowRoot) visit(el.shadowRoot); }); }; visit(document); return out; }")
            cited = page.get_by_text("Parallel Workloads Archive").count()
        finally:
            browser.close()
    assert not errors, errors
    assert n_canvas >= 4, n_canvas  # two wait CDFs, queue and utilization timelines
    assert sum(1 for t in figures if t == "Figure") >= 4, figures
    assert sum(1 for w, h in sizes if w > 100 and h > 100) >= 4, sizes  # drawn plot areas
    assert cited >= 1
