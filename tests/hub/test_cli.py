"""``sandfill hub check SITE.yaml [--json]`` (no Slurm needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandfill.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "hub_config" / "site.example.yaml"


def test_check_prints_the_resolved_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hub", "check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "OK (2 profile(s), partitions interactive, burst, gpu)" in out
    assert "max_walltime: 08:00:00 (8 hours)" in out
    assert "walltime_warning: 00:10:00 (10 minutes)" in out  # "10:00" is ten minutes
    assert "max_memory: 32G (32 GiB)" in out
    assert "small: 1 CPU, 2G (2 GiB), 02:00:00 (2 hours) on interactive" in out


def test_check_warns_when_users_share_the_hubs_origin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hub", "check", str(EXAMPLE)]) == 0  # the example sets subdomain_host
    assert "warning" not in capsys.readouterr().err
    f = tmp_path / "site.yaml"
    f.write_text("port: 9000\n")
    assert main(["hub", "check", str(f)]) == 0  # valid, but unsafe for untrusted users
    err = capsys.readouterr().err
    assert "warning: subdomain_host is not set: every user's server shares the hub's origin" in err


def test_check_json_has_seconds_and_mib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "site.yaml"
    f.write_text("max_walltime: '2:00'\nmax_memory: 4G\nprofiles: [{name: p, cpus: 1, memory: 512, walltime: 2}]\n")
    assert main(["hub", "check", str(f), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["max_walltime"] == 120 and data["max_memory"] == 4096
    assert data["profiles"] == [{"name": "p", "description": "", "cpus": 1, "memory": 512, "walltime": 120, "partition": None, "sbatch": []}]
    assert data["poll_interval"] == 30 and data["partitions"] == ["interactive"]


def test_check_ignores_the_environment_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "site.yaml"
    f.write_text("port: 9000\n")
    monkeypatch.setenv("SANDFILL_HUB_PORT", "9100")
    assert main(["hub", "check", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["port"] == 9000
    assert main(["hub", "check", str(f), "--json", "--env"]) == 0
    assert json.loads(capsys.readouterr().out)["port"] == 9100


def test_bad_file_exits_2_listing_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "site.yaml"
    f.write_text("prot: 8000\nmax_walltime: forever\nprofiles: [{name: x, cpus: 1, memory: lots, walltime: 1h}]\n")
    assert main(["hub", "check", str(f)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert f"{f}: INVALID (3 problem(s))" in err
    assert "error: prot: unknown key; did you mean 'port'?" in err
    assert "error: max_walltime: 'forever' is not a duration" in err
    assert "error: profiles.0.memory: 'lots' is not an amount of memory" in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hub", "check", str(tmp_path / "nope.yaml"), "--json"]) == 2
    assert "cannot read the site file" in capsys.readouterr().err
