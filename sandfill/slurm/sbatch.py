"""``sbatch``: the job id it prints, and the answer of ``--test-only``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sandfill.slurm.states import check_job_id
from sandfill.units import parse_timestamp

_TEST_ONLY = re.compile(
    r"Job (?P<job>\d+) to start at (?P<start>\S+) using (?P<cpus>\d+) processors on nodes (?P<nodes>\S+)(?: in partition (?P<part>\S+))?"
)


@dataclass(frozen=True)
class TestOnlyAnswer:
    __test__ = False  # not a pytest class

    start_time: float
    cpus: int
    nodes: str
    partition: str | None


def parse_test_only(text: str) -> TestOnlyAnswer | None:
    """``sbatch --test-only`` prints (on stderr) ``sbatch: Job 12 to start at
    2026-11-21T09:00:00 using 1 processors on nodes node1 in partition burst``."""
    m = _TEST_ONLY.search(text)
    if not m:
        return None
    start = parse_timestamp(m.group("start"))
    if start is None:
        return None
    return TestOnlyAnswer(start, int(m.group("cpus")), m.group("nodes"), m.group("part"))


def submit_argv(args: Sequence[str] = ()) -> list[str]:
    """``sbatch --parsable`` with ``args``; the script comes on stdin."""
    return ["sbatch", "--parsable", *args]


def parse_job_id(stdout: str) -> str:
    """The job id ``sbatch --parsable`` prints (``123`` or ``123;cluster``); ValueError if none."""
    return check_job_id(stdout.strip().split(";")[0])


def test_only_argv(args: Sequence[str] = ()) -> list[str]:
    """``sbatch --test-only`` with ``args``; the script comes on stdin."""
    return ["sbatch", "--test-only", *args]
