"""Run Slurm commands: argv lists only (never a shell), bounded by a timeout."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class SlurmCommandError(RuntimeError):
    """A Slurm command failed; ``stderr`` says why."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        msg = stderr.strip() or stdout.strip() or f"exit status {returncode}"
        super().__init__(f"{argv[0]} failed: {msg}")


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def command_env(slurm_conf: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> Result:
    try:
        p = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise SlurmCommandError(argv, -1, "", f"timed out after {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise SlurmCommandError(argv, 127, "", f"{argv[0]} not found: is Slurm installed?") from exc
    return _result(argv, p.returncode, p.stdout, p.stderr, check)


async def arun(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> Result:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError as exc:
        raise SlurmCommandError(argv, 127, "", f"{argv[0]} not found: is Slurm installed?") from exc
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input.encode() if input is not None else None), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SlurmCommandError(argv, -1, "", f"timed out after {timeout:.0f} s") from None
    return _result(argv, proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"), check)


def _result(argv: Sequence[str], code: int, stdout: str, stderr: str, check: bool) -> Result:
    if check and code != 0:
        raise SlurmCommandError(argv, code, stdout, stderr)
    return Result(list(argv), code, stdout, stderr)
