"""``sandfill.slurm.sacct`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.sacct import final_argv, parse_sacct_final

DATA = Path(__file__).parent / "data"


def test_sacct_final() -> None:
    rows = parse_sacct_final((DATA / "sacct_final.txt").read_text())
    assert rows["1"].state == "COMPLETED" and rows["1"].ended and rows["1"].exit_code == "0:0"
    assert rows["2"].state == "PENDING" and rows["2"].nodes is None and rows["2"].start_time is None


def test_final_argv() -> None:
    argv = final_argv(["7", "3"])
    assert argv[:6] == ["sacct", "-X", "-n", "-P", "-j", "3,7"] and argv[6] == "-o"
    with pytest.raises(ValueError):
        final_argv(["7,8"])
