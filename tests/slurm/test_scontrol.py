"""``sandfill.slurm.scontrol`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

from sandfill.slurm.scontrol import parse_ping, parse_reservations, ping_argv
from sandfill.units import parse_timestamp

DATA = Path(__file__).parent / "data"


def test_ping() -> None:
    assert ping_argv() == ["scontrol", "ping"]
    assert parse_ping((DATA / "scontrol_ping.txt").read_text())
    assert not parse_ping("Slurmctld(primary) at vm is DOWN\n")


def test_reservations() -> None:
    (r,) = parse_reservations((DATA / "scontrol_show_res.txt").read_text())
    assert (r.name, r.nodes) == ("maint", ("node3", "node4"))
    assert (r.start, r.end) == (parse_timestamp("2026-12-01T11:06:49"), parse_timestamp("2026-12-01T12:06:49"))
    assert parse_reservations((DATA / "scontrol_show_res_none.txt").read_text()) == []
