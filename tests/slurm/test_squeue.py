"""``sandfill.slurm.squeue`` on output recorded from Slurm 22.05.8 (Debian 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandfill.slurm.commands import Result, SlurmCommandError
from sandfill.slurm.squeue import (
    SQUEUE_FORMAT,
    ids_argv,
    parse_ids,
    parse_pending_positions,
    parse_planned_starts,
    parse_squeue,
    parse_status,
    pending_argv,
    status_argv,
)
from sandfill.slurm.states import UNKNOWN
from sandfill.units import format_duration, parse_slurm_time, parse_timestamp

DATA = Path(__file__).parent / "data"


def test_squeue_real_output_pending_running_completed() -> None:
    jobs = parse_squeue((DATA / "squeue_mixed.txt").read_text())
    assert set(jobs) == {"1", "2", "3", "4", "5", "6", "7"}
    big = jobs["6"]
    assert big.pending and big.reason == "Resources" and big.nodes is None
    assert big.start_time == parse_timestamp("2026-11-21T09:04:22")  # the estimate
    assert big.time_limit == 3600 and big.partition == "batch" and big.qos == "normal"
    rock = jobs["2"]
    assert rock.reason == "Priority" and rock.name is None  # the name is never asked for
    assert rock.time_limit == 30 * 60
    run = jobs["7"]
    assert run.running and run.reason is None and run.nodes == "node1" and run.exec_host == "node1"
    assert run.end_time - run.start_time == 600
    assert run.time_left(now=run.start_time + 100) == 500
    done = jobs["1"]
    assert done.ended and done.nodes == "node[1-2]"
    assert not done.pending and not done.running


GOOD = "7|RUNNING|None|node1|2026-11-21T08:54:22|2026-11-21T09:04:22|10:00|burst|normal|root|2026-11-21T08:54:22|node1"

# one bad line each (as a user-chosen field, a truncated answer or a garbled byte would make
# it), printed between two good rows: the line, and the state its job then has (if it names one)
BAD_LINES = [
    ("12|RUNNING|None", UNKNOWN),  # too few fields
    (GOOD.replace("7|", "12|", 1) + "|a|b", UNKNOWN),  # too many (a name with | in the old format)
    (GOOD.replace("7|", "12|", 1) + "|a", UNKNOWN),  # the old format's name, before its newline
    ("b|c", None),  # ... and the rest of that name, on the next line
    ("x\ty|RUNNING|None|node1|N/A|N/A|1:00|batch|normal|root|N/A|node1", None),  # no job id
    ("|" * 11, None),
    ("\ufffd\ufffd" + GOOD[1:], None),  # undecodable bytes where the id is, replaced
    (GOOD.replace("7|", "12|", 1).replace("burst", "b\ufffdrst"), "RUNNING"),  # in a field: kept
    ("9" * 100_000, None),  # not a 32-bit job id
    ("%j%%i|" * 11 + "%T", None),
]


@pytest.mark.parametrize("line,state", BAD_LINES, ids=range(len(BAD_LINES)))
def test_squeue_one_bad_line_spoils_only_itself(line: str, state: str | None) -> None:
    jobs = parse_squeue(f"{GOOD.replace('7|', '1|', 1)}\n{line}\n{GOOD}\n")
    assert jobs["1"].running and jobs["7"].running and jobs["7"].nodes == "node1"
    assert {j: s.state for j, s in jobs.items() if j not in {"1", "7"}} == ({"12": state} if state else {})
    assert jobs.unreadable == ([] if state == "RUNNING" else [line[:200]])
    assert not any(s.ended for s in jobs.values() if s.state == UNKNOWN)  # never "ended"


def test_squeue_format_asks_for_no_user_chosen_field() -> None:
    # job name, comment, work dir, command, admin comment, array-job name...: a user sets
    # them, so they could break the record framing (a newline) or forge a row
    assert not {"%j", "%k", "%Z", "%o", "%x", "%y"} & set(SQUEUE_FORMAT.split("|"))
    assert status_argv(["1"])[3] == SQUEUE_FORMAT


def test_squeue_a_pending_array_row_is_read() -> None:
    row = GOOD.replace("7|RUNNING", "8_[1-5%2]|PENDING", 1)
    assert parse_squeue(row)["8_[1-5%2]"].pending


@pytest.mark.parametrize(
    "text,seconds",
    [("30:00", 1800), ("1:00:00", 3600), ("2-00:00:00", 172800), ("1-02", 93600), ("5", 300), ("UNLIMITED", None), ("00:00:05", 5)],
)
def test_time_limits(text: str, seconds: int | None) -> None:
    # the %l values squeue prints, through the one Slurm time parser
    assert parse_slurm_time(text) == seconds
    if seconds is not None:
        assert parse_slurm_time(format_duration(seconds)) == seconds


def test_status_argv_asks_for_the_ids_in_any_state() -> None:
    argv = status_argv(["12", "3", "12"])
    assert argv[:3] == ["squeue", "-h", "-o"] and argv[-4:] == ["-t", "all", "-j", "3,12"]
    assert "-j" not in status_argv()
    with pytest.raises(ValueError, match="not a Slurm job id"):
        status_argv(["12;rm"])


def test_forgotten_ids_are_an_answer_other_failures_raise() -> None:
    stderr = (DATA / "squeue_invalid_id.txt").read_text()
    assert parse_status(Result(status_argv(["99999"]), 1, "", stderr)) == {}
    with pytest.raises(SlurmCommandError, match="Unable to contact"):
        parse_status(Result(status_argv(["1"]), 1, "", "slurm_load_jobs error: Unable to contact slurm controller"))


def test_pending_positions_by_partition_and_priority() -> None:
    assert pending_argv() == ["squeue", "-h", "-t", "PD", "-o", "%i|%P|%Q"]
    pos = parse_pending_positions((DATA / "squeue_pending.txt").read_text())
    # batch: 5 (1562), 6 and 12 (1250, by id), then 1-4 (1234); 12 also waits in burst,
    # but batch is the partition met first in the output
    assert pos["5"] == (1, 7) and pos["6"] == (2, 7) and pos["1"] == (4, 7) and pos["4"] == (7, 7)
    assert pos["12"] == (3, 7)
    assert pos["11"] == (1, 1)
    assert set(pos) == {"1", "2", "3", "4", "5", "6", "11", "12"}


def test_pending_positions_skip_garbage() -> None:
    assert parse_pending_positions("x|batch|1\n7|batch\n\n") == {}


def test_job_ids() -> None:
    assert parse_ids((DATA / "squeue_ids.txt").read_text())[:3] == ["5", "6", "1"]


def test_planned_starts_by_node() -> None:
    starts = parse_planned_starts((DATA / "squeue_planned_starts.txt").read_text())
    assert starts == {n: parse_timestamp("2026-12-01T09:11:47") for n in ("node1", "node2", "node3", "node4")}
    # no estimate yet, or no planned nodes: left out; the earliest start per node wins
    assert parse_planned_starts("N/A|(null)\n2026-12-01T10:00:00|\n2026-12-01T10:00:00|node1\n2026-12-01T09:00:00|node1\n") == {
        "node1": parse_timestamp("2026-12-01T09:00:00")
    }
    # a node list that is not one costs its line only
    assert parse_planned_starts("2026-12-01T09:00:00|node[x-y]\n2026-12-01T09:00:00|node2\n") == {
        "node2": parse_timestamp("2026-12-01T09:00:00")
    }


def test_user_ids_in_any_state() -> None:
    assert ids_argv("all", ["sftest-ada"]) == ["squeue", "-h", "-u", "sftest-ada", "-t", "all", "-o", "%A"]
    assert ids_argv(users=["sftest-ada", "sftest-bob"]) == ["squeue", "-h", "-u", "sftest-ada,sftest-bob", "-o", "%A"]
    assert ids_argv("R,CG,S") == ["squeue", "-h", "-t", "R,CG,S", "-o", "%A"]
    assert ids_argv("all", ["ada"], name="jupyterhub-ada")[4] == "--name=jupyterhub-ada"
    for bad_name in ("a,b", "x\n", "-t"):
        with pytest.raises(ValueError, match="not a Slurm name"):
            ids_argv(name=bad_name)
    for bad in (["ada,bob"], ["-t"], []):
        with pytest.raises(ValueError):
            ids_argv(users=bad)
    # -t all: the cancelled job 1 is still listed (until MinJobAge), in squeue's order
    assert parse_ids((DATA / "squeue_user_ids.txt").read_text()) == ["1", "4", "3", "2"]


def test_name_argv_asks_for_one_jobs_name_only() -> None:
    from sandfill.slurm.squeue import name_argv

    assert name_argv("12") == ["squeue", "-h", "-t", "all", "-j", "12", "-o", "%j"]
    with pytest.raises(ValueError, match="not a Slurm job id"):
        name_argv("12,13")
