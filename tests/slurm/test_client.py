"""``SlurmClient``: each method runs its command module's argv through the one Runner and
returns what that module's parser reads (faults injected by overriding Runner.aexecute)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from sandfill.slurm import SlurmClient
from sandfill.slurm.commands import Result, Runner, SlurmCommandError

DATA = Path(__file__).parent / "data"


class _Scripted(Runner):
    """Answers each command with the next scripted (returncode, stdout, stderr)."""

    def __init__(self, answers: list[tuple[int, str, str]]) -> None:
        super().__init__("/nonexistent/slurm.conf", prefix=["sudo", "-u", "ada"])
        self.answers = answers
        self.seen: list[tuple[list[str], str | None]] = []

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.seen.append((self.argv(argv), input))
        code, out, err = self.answers.pop(0)
        return Result(self.argv(argv), code, out, err)

    async def aexecute(self, argv: Sequence[str], input: str | None) -> Result:
        return self.execute(argv, input)


def _client(*answers: tuple[int, str, str]) -> tuple[SlurmClient, _Scripted]:
    c = SlurmClient("/nonexistent/slurm.conf")
    c.runner = _Scripted(list(answers))
    return c, c.runner


def test_env_names_the_cluster() -> None:
    c = SlurmClient("/x/slurm.conf", env={"A": "1"})
    assert c.env["SLURM_CONF"] == "/x/slurm.conf" and c.env["A"] == "1" and c.slurm_conf == "/x/slurm.conf"


@pytest.mark.asyncio
async def test_submit_sends_the_script_through_the_prefix() -> None:
    c, r = _client((0, "17;sandfill\n", ""))
    assert await c.submit("#!/bin/sh\n", ["-p", "batch"]) == "17"
    assert r.seen == [(["sudo", "-u", "ada", "sbatch", "--parsable", "-p", "batch"], "#!/bin/sh\n")]


@pytest.mark.asyncio
async def test_submit_failure_says_why() -> None:
    c, _ = _client((1, "", "sbatch: error: invalid partition specified: nope"))
    with pytest.raises(SlurmCommandError, match="invalid partition"):
        await c.submit("#!/bin/sh\n", ["-p", "nope"])


@pytest.mark.asyncio
async def test_squeue_and_forgotten_ids() -> None:
    c, r = _client((0, (DATA / "squeue_mixed.txt").read_text(), ""), (1, "", (DATA / "squeue_invalid_id.txt").read_text()))
    jobs = await c.squeue(["6", "7"])
    assert jobs["6"].pending and r.seen[0][0][-2:] == ["-j", "6,7"]
    assert await c.squeue(["99999"]) == {}


@pytest.mark.asyncio
async def test_cancel_nothing_runs_nothing() -> None:
    c, r = _client((0, "", ""))
    await c.cancel([])
    assert r.seen == []
    await c.cancel(["5"], signal="USR1")
    assert r.seen[0][0][-3:] == ["scancel", "--signal=USR1", "5"]


@pytest.mark.asyncio
async def test_test_only_reads_stderr_and_raises_without_an_answer() -> None:
    c, _ = _client((0, "", (DATA / "sbatch_test_only.txt").read_text()), (1, "", "sbatch: error: Requested node configuration is not available"))
    ans = await c.test_only("#!/bin/sh\n", ["-c", "2"])
    assert ans is not None and ans.partition == "burst"
    with pytest.raises(SlurmCommandError, match="not available"):
        await c.test_only("#!/bin/sh\n", ["-c", "999"])


@pytest.mark.asyncio
async def test_partitions_associations_pending() -> None:
    c, r = _client(
        (0, (DATA / "sinfo_partitions.txt").read_text(), ""),
        (0, (DATA / "sacctmgr_assoc.txt").read_text(), ""),
        (0, (DATA / "squeue_pending.txt").read_text(), ""),
    )
    assert (await c.partitions())["burst"].cpus_idle == 29
    assert [a.account for a in await c.associations("root")] == ["sandfill", "root"]
    assert (await c.pending_positions())["5"] == (1, 7)
    assert await c.associations("not a user") == []  # asks nothing
    assert len(r.seen) == 3


def test_sacct_final_sync() -> None:
    c, r = _client((0, (DATA / "sacct_final.txt").read_text(), ""))
    assert c.sacct_final_sync([]) == {}
    assert c.sacct_final_sync(["1", "2"])["1"].state == "COMPLETED"
    assert len(r.seen) == 1


@pytest.mark.asyncio
async def test_nodes_planned_starts_reservations() -> None:
    c, r = _client(
        (0, (DATA / "sinfo_nodes.txt").read_text(), ""),
        (0, "", ""),  # nothing pending
        (0, "No reservations in the system\n", ""),
        (1, "", "slurm_load_reservations error: Unable to contact slurm controller"),
    )
    assert any(n["node"] == "node1" for n in await c.nodes("batch"))
    assert r.seen[0][0][-2:] == ["-p", "batch"]
    assert await c.planned_starts() == {}
    assert await c.reservations() == []
    with pytest.raises(SlurmCommandError, match="Unable to contact"):
        await c.reservations()
