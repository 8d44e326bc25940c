"""The history of applies: a corrupt record is named, never silently skipped or
overwritten; the rollback target; the lock refuses a second apply at once."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from sandfill.cli import main
from sandfill.policies.live.history import (
    History,
    HistoryLocked,
    Record,
    in_force,
    rollback_target,
)


def _rec(rid: int, name: str, status: str = "applied") -> Record:
    return Record(id=rid, when="2026-12-01T10:00:00+00:00", who="root", action=f"apply {name}",
                  status=status, changes=[], policy={"name": name})


@pytest.fixture
def fragment(tmp_path: Path) -> Path:
    (tmp_path / "slurm.conf").write_text("Include policy.conf\n")
    frag = tmp_path / "policy.conf"
    frag.write_text("# policy\n")
    return frag


def _corrupt(fragment: Path) -> History:
    hist = History(fragment)
    hist.add(_rec(1, "a"))
    hist.add(_rec(2, "b"))
    (hist.dir / "000003.json").write_text('{"id": 3, "when": ')  # cut short (disk full)
    (hist.dir / "000004.json").write_text(json.dumps({**asdict(_rec(4, "c")), "extra": 1}))
    (hist.dir / "000005.json").write_text(json.dumps(asdict(_rec(7, "d"))))  # wrong id
    return hist


def test_corrupt_records_are_named_not_skipped_in_silence(fragment: Path) -> None:
    hist = _corrupt(fragment)
    assert [r.id for r in hist.records()] == [1, 2]
    assert len(hist.warnings) == 3
    for name in ("000003.json", "000004.json", "000005.json"):
        assert any(name in w for w in hist.warnings), (name, hist.warnings)
    assert hist.next_id() == 6  # the corrupt files are evidence: never overwritten


@pytest.mark.parametrize("argv", [["history"], ["history", "--show", "2"]])
def test_the_cli_reports_corrupt_records(fragment: Path, capsys, argv) -> None:
    _corrupt(fragment)
    conf = str(fragment.parent / "slurm.conf")
    assert main(["policy", *argv, "--slurm-conf", conf]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "000003.json" in err and "000005.json" in err


def test_policy_show_reads_the_warnings(fragment: Path) -> None:
    from sandfill.policies.cli.live import _history_of  # `policy show` prints them as comments

    _corrupt(fragment)
    assert any("000003.json" in w for w in _history_of(fragment).warnings)


def test_rollback_target() -> None:
    recs = [_rec(1, "a"), _rec(2, "b"), _rec(3, "b", "failed"), _rec(4, "b")]
    assert in_force(recs).id == 4
    assert rollback_target(recs, None).id == 1
    assert rollback_target(recs, 2).id == 2
    with pytest.raises(LookupError, match="record 3 is a failed apply"):
        rollback_target(recs, 3)
    with pytest.raises(LookupError, match="no history record 9"):
        rollback_target(recs, 9)
    with pytest.raises(LookupError, match="no earlier applied policy"):
        rollback_target(recs[:1], None)


def test_a_second_lock_is_refused_at_once(fragment: Path) -> None:
    hist = History(fragment)
    with hist.lock():
        with pytest.raises(HistoryLocked, match="holds"), History(fragment).lock():
            pass
    with History(fragment).lock():  # free again
        pass


def test_the_gate_note_is_kept_and_shown(fragment: Path, capsys) -> None:
    hist = History(fragment)
    old = asdict(_rec(1, "a"))
    del old["simulation"]  # a record written before the gate existed still reads
    hist.dir.mkdir()
    (hist.dir / "000001.json").write_text(json.dumps(old))
    skipped = _rec(2, "b")
    skipped.simulation = "not simulated (--no-simulate)"
    hist.add(skipped)
    recs = hist.records()
    assert [r.simulation for r in recs] == ["", "not simulated (--no-simulate)"] and not hist.warnings
    conf = str(fragment.parent / "slurm.conf")
    assert main(["policy", "history", "--slurm-conf", conf]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("apply a") and lines[1].endswith("[not simulated (--no-simulate)]")
    assert main(["policy", "history", "--show", "2", "--slurm-conf", conf]) == 0
    assert "  simulation: not simulated (--no-simulate)" in capsys.readouterr().out
