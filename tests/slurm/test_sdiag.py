"""``sandfill.slurm.sdiag`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

from sandfill.dev.testing import queue_rpcs
from sandfill.slurm.sdiag import parse_sdiag_rpcs

DATA = Path(__file__).parent / "data"


def test_sdiag_rpc_counts() -> None:
    counts = parse_sdiag_rpcs((DATA / "sdiag.txt").read_text())
    assert counts["REQUEST_SUBMIT_BATCH_JOB"] >= 6
    assert "REQUEST_JOB_INFO" in counts
    # user section is not mixed in
    assert "root" not in counts
    assert queue_rpcs(counts) == counts.get("REQUEST_JOB_INFO", 0) + counts.get("REQUEST_JOB_INFO_SINGLE", 0)


def test_sdiag_rpc_counts_by_user() -> None:
    from sandfill.slurm.sdiag import parse_sdiag_users

    text = (DATA / "sdiag.txt").read_text()
    assert parse_sdiag_users(text) == {"root": 50}
    more = text.replace("\troot            (       0) count:50", "\troot            (       0) count:50\n\tsftest-ada      (    1001) count:7")
    assert parse_sdiag_users(more) == {"root": 50, "sftest-ada": 7}
    assert "REQUEST_JOB_INFO" not in parse_sdiag_users(text)
