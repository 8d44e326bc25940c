"""``sandfill devcluster``'s command line, without a cluster: ``--state-dir`` is accepted
before and after the action (the same value either way), and bad flags are refused before
anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.cli import build_parser, main

ACTIONS = ["up", "down", "env", "status"]


@pytest.mark.parametrize("action", ACTIONS)
def test_state_dir_before_or_after_the_action(action: str, tmp_path: Path) -> None:
    parser = build_parser()
    before = parser.parse_args(["devcluster", "--state-dir", str(tmp_path), action])
    after = parser.parse_args(["devcluster", action, "--state-dir", str(tmp_path)])
    neither = parser.parse_args(["devcluster", action])
    assert before.state_dir == after.state_dir == str(tmp_path)
    assert neither.state_dir is None  # the default state directory
    assert after.func is before.func


def test_state_dir_after_the_action_is_the_cluster_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devcluster", "env", "--state-dir", str(tmp_path)]) == 0
    assert f"export SLURM_CONF={tmp_path}/etc/slurm.conf" in capsys.readouterr().out
    assert main(["devcluster", "status", "--state-dir", str(tmp_path)]) == 1
    assert f"no devcluster in {tmp_path}" in capsys.readouterr().out
    assert main(["devcluster", "down", "--state-dir", str(tmp_path)]) == 0
    assert f"no devcluster running in {tmp_path}" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("where", ["before", "after"])
def test_bad_flags_are_refused_and_nothing_is_written(where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path)]
    prefix, suffix = (state, []) if where == "before" else ([], state)
    with pytest.raises(SystemExit):
        main(["devcluster", *prefix, "up", "--nodes", "-3", *suffix])
    assert "--nodes must be at least 1, got -3" in capsys.readouterr().err
    assert main(["devcluster", *prefix, "up", "--users", "bob;rm -rf /", *suffix]) == 2
    assert "'bob;rm -rf /' is not a valid user name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_up_is_private_unless_asked_for_a_shared_queue() -> None:
    parser = build_parser()
    assert parser.parse_args(["devcluster", "up"]).private_data is True
    assert parser.parse_args(["devcluster", "up", "--shared-queue"]).private_data is False


def test_node_classes_need_hosts_and_bad_ones_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path / "dc")]
    assert main(["devcluster", "up", *state, "--node-class", "name=cpu,count=2"]) == 2
    assert "node classes (--node-class / --node-classes) need --hosts" in capsys.readouterr().err
    assert main(["devcluster", "up", "--hosts", *state, "--node-class", "name=cpu,count=2,cpus=lots"]) == 2
    assert "classes.0.cpus" in capsys.readouterr().err
    bad = tmp_path / "classes.yaml"
    bad.write_text("classes:\n  - {name: cpu, count: 2, gpu: 1}\n")
    assert main(["devcluster", "up", "--hosts", *state, "--node-classes", str(bad)]) == 2
    assert "classes.0.gpu: unknown key; did you mean 'gpus'?" in capsys.readouterr().err
    assert not (tmp_path / "dc").exists()


def test_hosts_and_node_classes_parse() -> None:
    parser = build_parser()
    assert parser.parse_args(["devcluster", "up"]).hosts is False  # the single host stays the default
    args = parser.parse_args(["devcluster", "up", "--hosts", "--node-class", "name=a,count=1", "--node-class", "name=b,count=2"])
    assert args.hosts is True and args.node_class == ["name=a,count=1", "name=b,count=2"]
    with pytest.raises(SystemExit):
        parser.parse_args(["devcluster", "up", "--hosts", "--node-class", "name=a,count=1", "--node-classes", "f.yaml"])
