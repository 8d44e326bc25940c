"""``sandfill policy check|render`` through the root CLI."""

from __future__ import annotations

from pathlib import Path

from sandfill.cli import main
from sandfill.policies.document.load import default_policy_path

BAD = Path(__file__).parents[1] / "document" / "bad_policies"


def test_check_valid(capsys) -> None:
    assert main(["policy", "check", default_policy_path(), "--nodes", "4",
                 "--cpus-per-node", "8"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "warning" not in out


def test_check_warnings_without_accounting(capsys) -> None:
    assert main(["policy", "check", default_policy_path(), "--no-accounting"]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "max_jobs_per_user" in out


def test_check_invalid_prints_every_error(capsys) -> None:
    assert main(["policy", "check", str(BAD / "wrong_types.yaml")]) == 1
    out = capsys.readouterr().out
    assert "INVALID (3 problem(s))" in out
    assert "tiers.batch.max_nodes" in out and "'four'" in out
    assert "priority.weights.age" in out and "scheduler.backfill.continue" in out


def test_check_shape_error(capsys) -> None:
    assert main(["policy", "check", default_policy_path(), "--nodes", "2",
                 "--cpus-per-node", "8"]) == 1
    assert "exceeds the cluster" in capsys.readouterr().out


def test_check_half_shape_is_user_error(capsys) -> None:
    assert main(["policy", "check", default_policy_path(), "--nodes", "2"]) == 2
    assert "go together" in capsys.readouterr().err


def test_render(capsys) -> None:
    assert main(["policy", "render", default_policy_path(), "--nodes", "node[1-4]"]) == 0
    out = capsys.readouterr().out
    assert "PartitionName=batch Nodes=node[1-4]" in out
    assert "sacctmgr -i modify qos where name=burst set" in out


def test_render_no_accounting(capsys) -> None:
    assert main(["policy", "render", default_policy_path(), "--no-accounting"]) == 0
    out = capsys.readouterr().out
    assert "sacctmgr" not in out and "# warning:" in out


def test_render_invalid(capsys) -> None:
    assert main(["policy", "render", str(BAD / "not_mapping.yaml")]) == 1
