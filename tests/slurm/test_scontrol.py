"""``sandfill.slurm.scontrol`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

from sandfill.slurm.scontrol import parse_ping, ping_argv

DATA = Path(__file__).parent / "data"


def test_ping() -> None:
    assert ping_argv() == ["scontrol", "ping"]
    assert parse_ping((DATA / "scontrol_ping.txt").read_text())
    assert not parse_ping("Slurmctld(primary) at vm is DOWN\n")
