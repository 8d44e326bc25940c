"""``sandfill.slurm.commands``: argv only, bounded, output decoded with replacement."""

from __future__ import annotations

import pytest

from sandfill.slurm.commands import Runner, SlurmCommandError, arun, run

# printf's own escapes: bytes that are not UTF-8 (a job name a user chose), on both streams
NOT_UTF8 = ["sh", "-c", r"printf 'a\377\376b|c\n'; printf 'e\377\n' >&2", "sh"]


def test_run_decodes_bytes_that_are_not_utf8_with_replacement() -> None:
    res = run(NOT_UTF8)
    assert res.stdout == "a\ufffd\ufffdb|c\n" and res.stderr == "e\ufffd\n"


@pytest.mark.asyncio
async def test_arun_decodes_bytes_that_are_not_utf8_with_replacement() -> None:
    res = await arun(NOT_UTF8)
    assert res.stdout == "a\ufffd\ufffdb|c\n" and res.stderr == "e\ufffd\n"


@pytest.mark.asyncio
async def test_runner_sync_and_async_agree_and_never_raise_on_bytes() -> None:
    r = Runner(None)
    assert r.run(NOT_UTF8).stdout == (await r.arun(NOT_UTF8)).stdout == "a\ufffd\ufffdb|c\n"


def test_a_timeout_is_a_command_error_naming_the_bound() -> None:
    with pytest.raises(SlurmCommandError, match="timed out after 0 s"):
        run(["sleep", "5"], timeout=0.2)
    assert Runner(None, timeout=0.2).run(["sleep", "5"]).returncode == -1
