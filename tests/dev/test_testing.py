"""``sandfill.dev.testing``: TestSlurm's blocking helpers run the Slurm layer's argv through
the client's Runner (a recording Runner here, no Slurm)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sandfill.dev.testing import TestSlurm
from sandfill.slurm.commands import Result, Runner, SlurmCommandError
from sandfill.slurm.sinfo import nodes_argv


class Recording(Runner):
    def __init__(self, stdout: str = "", returncode: int = 0) -> None:
        super().__init__("/nonexistent/slurm.conf")
        self.calls: list[list[str]] = []
        self.stdout, self.returncode = stdout, returncode

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.calls.append(list(argv))
        return Result(list(argv), self.returncode, self.stdout if self.returncode == 0 else "", "boom" if self.returncode else "")


def client(stdout: str = "", returncode: int = 0) -> tuple[TestSlurm, Recording]:
    c = TestSlurm("/nonexistent/slurm.conf")
    c.runner = rec = Recording(stdout, returncode)
    return c, rec


def test_cancel_by_ids_and_by_user() -> None:
    c, rec = client()
    c.cancel_sync(["12", "3"])
    c.cancel_sync([])  # nothing to cancel: no command
    c.cancel_user_sync("sftest-ada")
    assert rec.calls == [["scancel", "3", "12"], ["scancel", "-u", "sftest-ada"]]
    failing, _ = client(returncode=1)
    failing.cancel_sync(["3"])  # best effort by default
    failing.cancel_user_sync("sftest-ada")
    with pytest.raises(SlurmCommandError, match="boom"):
        failing.cancel_sync(["3"], check=True)


def test_user_job_ids() -> None:
    c, rec = client("5\n7\n")
    assert c.user_job_ids_sync(["sftest-ada"], "all") == ["5", "7"]
    assert rec.calls == [["squeue", "-h", "-u", "sftest-ada", "-t", "all", "-o", "%A"]]
    failing, _ = client(returncode=1)
    assert failing.user_job_ids_sync(["sftest-ada"], check=False) == []
    with pytest.raises(SlurmCommandError):
        failing.user_job_ids_sync(["sftest-ada"])


def test_sacct_user_ids() -> None:
    c, rec = client("1\n2\n")
    assert c.sacct_user_ids_sync("sftest-bob") == ["1", "2"]
    assert rec.calls == [["sacct", "-X", "-n", "-P", "-u", "sftest-bob", "-S", "now-1days", "-o", "JobID"]]
    with pytest.raises(SlurmCommandError):
        client(returncode=1)[0].sacct_user_ids_sync("sftest-bob")


def test_node_state_and_resume() -> None:
    c, rec = client("node2|burst|drain|0/0/8/8|16000|15000|1:00:00\nnode2|batch*|drain|0/0/8/8|16000|15000|2-00:00:00\n")
    assert c.node_state_sync("node2") == "drain"
    assert c.resume_node_sync("node2") is True
    assert rec.calls == [nodes_argv(node="node2"), ["scontrol", "update", "nodename=node2", "state=resume"]]
    failing, _ = client(returncode=1)
    assert failing.node_state_sync("node2") == "" and failing.resume_node_sync("node2") is False
