"""The sweep report's HTML: a plot per load, hover and tap on each point, the front's links."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sandfill.policies.document.load import policy_from_yaml
from sandfill.policies.lab.report import write_report
from sandfill.policies.lab.results import write_results
from sandfill.policies.lab.spec import expand, read_spec

BASE = policy_from_yaml("name: base\ntiers:\n  short: {max_walltime: '1:00:00'}\n"
                        "  batch: {max_walltime: 10-00:00:00}\nroles: {default: batch}\n")


def test_each_point_links_its_policy_file_relative_to_the_report(tmp_path: Path) -> None:
    knobs, _ = read_spec({"knobs": {"tiers.short.max_walltime": ["30:00", "2h"]}}, BASE)
    vs = expand(knobs, [1.0, 2.0], BASE)
    figures = {v.name: {"short.p95_wait": 600.0 * (i + 1), "long.mean_wait": 3600.0,
                        "utilization": 0.5} for i, v in enumerate(vs)}
    table = tmp_path / "a" / "results.csv"
    table.parent.mkdir()
    rows = write_results(vs, figures, table)
    (tmp_path / "b").mkdir()
    html = Path(write_report(tmp_path / "b" / "report.html", rows, ["tiers.short.max_walltime"],
                             table_dir=table.parent)).read_text()
    assert "load 1: short-job p95 wait" in html and "load 2: short-job p95 wait" in html
    assert '"name":"OpenURL"' in html and '"name":"HoverTool"' in html and '"name":"TapTool"' in html
    assert "../a/results-policies/base-v0001.yaml" in html
    links = re.findall(r'&lt;a href=\\"([^"\\]+)\\"&gt;', html)  # the front's table, escaped in the JSON
    assert links and all(link.startswith("../a/results-policies/") for link in links)
    for link in links:
        assert (tmp_path / "b" / link).resolve().is_file()
    assert json.dumps("tiers.short.max_walltime=00:30:00")[1:-1] in html  # the hover's knob settings
