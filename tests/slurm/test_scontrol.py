"""``sandfill.slurm.scontrol`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.scontrol import parse_ping, parse_reservations, ping_argv, resume_node_argv
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


def test_show_config_and_scheduler_params() -> None:
    from sandfill.slurm.scontrol import CONFIG_VOLATILE, parse_config, scheduler_params

    text = (DATA / "scontrol_show_config.txt").read_text()
    cfg = parse_config(text)
    assert cfg["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert cfg["PriorityType"] == "priority/multifactor"
    params = scheduler_params(cfg["SchedulerParameters"])
    assert params["bf_interval"] == "5" and params["bf_window"] == "2880"
    assert params["bf_continue"] == ""  # a flag
    assert any(ln.startswith(CONFIG_VOLATILE) for ln in text.splitlines())


def test_show_partitions() -> None:
    from sandfill.slurm.scontrol import parse_partitions

    parts = parse_partitions((DATA / "scontrol_show_partition.txt").read_text())
    assert [p["PartitionName"] for p in parts] == ["interactive", "burst", "batch"]
    first = parts[0]
    assert (first["MaxTime"], first["DefaultTime"], first["QoS"]) == ("08:00:00", "04:00:00", "interactive")
    assert (first["PriorityTier"], first["PriorityJobFactor"], first["Nodes"]) == ("100", "1000", "node[1-4]")
    assert parts[-1]["Default"] == "YES"


def test_resume_node_argv() -> None:
    assert resume_node_argv("node3") == ["scontrol", "update", "nodename=node3", "state=resume"]
    for bad in ("node[1-2]", "node1 state=down", "-x", ""):
        with pytest.raises(ValueError, match="not a node name"):
            resume_node_argv(bad)


def test_rename_job_argv_takes_any_name_for_one_job() -> None:
    from sandfill.slurm.scontrol import rename_job_argv

    assert rename_job_argv("12", "a\nb|c") == ["scontrol", "update", "JobId=12", "JobName=a\nb|c"]
    with pytest.raises(ValueError, match="not a Slurm job id"):
        rename_job_argv("12 JobId=13", "x")


def test_reservations_a_garbled_node_list_spoils_only_that_reservation() -> None:
    good = (DATA / "scontrol_show_res.txt").read_text()
    bad = good.replace("ReservationName=maint", "ReservationName=odd").replace("Nodes=node[3-4]", "Nodes=node[a-b]")
    assert [r.name for r in parse_reservations(f"{bad}\n{good}")] == ["maint"]
