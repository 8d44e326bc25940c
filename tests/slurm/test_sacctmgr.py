"""``sandfill.slurm.sacctmgr`` (associations, accounting set-up messages) on output recorded
from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.sacctmgr import (
    associations_argv,
    is_no_change,
    parse_associations,
    parse_qos,
)
from sandfill.slurm.states import is_user_name

DATA = Path(__file__).parent / "data"


def test_associations_any_partition() -> None:
    rows = parse_associations((DATA / "sacctmgr_assoc.txt").read_text())
    assert [a.account for a in rows] == ["sandfill", "root"]
    assert all(a.partition is None and a.qos == ("batch", "burst", "interactive", "normal") for a in rows)


def test_associations_per_partition() -> None:
    rows = parse_associations((DATA / "sacctmgr_assoc_partitions.txt").read_text())
    assert [(a.partition, a.qos) for a in rows] == [("interactive", ("normal",)), ("burst", ("burst", "normal"))]


def test_associations_argv_takes_plain_user_names_only() -> None:
    assert associations_argv("ada")[-2:] == ["user=ada", "format=Account,Partition,QOS"]
    assert is_user_name("sftest-ada") and not is_user_name("ada\nbob") and not is_user_name("Ada")
    with pytest.raises(ValueError, match="not a user name"):
        associations_argv("x format=User")


def test_qos_names() -> None:
    assert list(parse_qos((DATA / "sacctmgr_qos_names.txt").read_text())) == ["normal", "interactive", "burst", "batch"]


def test_no_change_messages() -> None:
    assert is_no_change((DATA / "sacctmgr_add_exists.txt").read_text())
    assert not is_no_change("sacctmgr: error: Problem talking to the database: Connection refused")


def test_show_qos_and_restore_settings() -> None:
    from sandfill.slurm.sacctmgr import modify_qos_argv, show_qos_argv

    rows = parse_qos((DATA / "sacctmgr_show_qos.txt").read_text())
    assert list(rows) == ["normal", "interactive", "burst", "batch"]
    assert (rows["interactive"].priority, rows["interactive"].max_jobs_per_user) == (1000, 20)
    assert rows["burst"].max_cpus_per_user is None and rows["burst"].preempt_mode == "cluster"
    assert rows["interactive"].settings() == [
        "Priority=1000", "MaxJobsPerUser=20", "MaxTRESPerUser=cpu=-1", "Preempt=", "PreemptMode=Cluster"]
    assert modify_qos_argv("burst", ["Priority=1"])[-3:] == ["name=burst", "set", "Priority=1"]
    assert show_qos_argv()[-1].startswith("format=Name,Priority")
