"""Parsers for the scheduler's answers, on real Slurm 22.05 output from the devcluster."""

from __future__ import annotations

import time

from sandfill.hub.spawner import _describe_start
from sandfill.hub.units import format_memory, format_walltime, parse_memory_mb, parse_walltime
from sandfill.slurm.view import parse_associations, parse_pending, parse_sinfo_partitions

SINFO = """\
batch|up|2-00:00:00|8|4|1/31/0/32|16000
burst|up|1:00:00|8|4|1/31/0/32|16000
interactive|up|8:00:00|8|4|1/31/0/32|16000
"""
SQUEUE_PD = """\
6|batch|10025
8|batch|10014
9|batch|1
12|interactive|10015
"""


def test_sinfo_partitions() -> None:
    parts = parse_sinfo_partitions(SINFO)
    assert list(parts) == ["batch", "burst", "interactive"]
    b = parts["burst"]
    assert b.up and b.max_time_s == 3600 and b.cpus_per_node == 8 and b.cpus_idle == 31 and b.cpus_total == 32
    assert parts["batch"].max_time_s == 2 * 86400


def test_associations() -> None:
    (a,) = parse_associations("sandfill||normal\n")
    assert a.account == "sandfill" and a.partition is None and a.qos == ("normal",)


def test_pending_positions_by_partition_and_priority() -> None:
    pos = parse_pending(SQUEUE_PD)
    assert pos == {"6": (1, 3), "8": (2, 3), "9": (3, 3), "12": (1, 1)}


def test_units() -> None:
    assert parse_walltime("1-02:03:04") == 93784
    assert parse_walltime("2h") == 7200 and parse_walltime("90min") == 5400 and parse_walltime("1:30") == 5400
    assert parse_memory_mb("2G") == 2048 and parse_memory_mb("1500M") == 1500 and parse_memory_mb("4GiB") == 4096
    assert format_walltime(93784) == "1-02:03:04" and format_memory(2048) == "2G" and format_memory(1500) == "1500M"


def test_estimated_start_text() -> None:
    assert "not yet estimated" in _describe_start(None)
    assert "(in 00:0" in _describe_start(time.time() + 300)
    assert "as soon as" in _describe_start(time.time() - 5)
