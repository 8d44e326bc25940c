"""Run Slurm commands: argv lists only (never a shell), bounded by a timeout.

:class:`Runner` is the one way sandfill runs a Slurm command, sync (:meth:`Runner.run`,
:meth:`Runner.check`) or async (:meth:`Runner.arun`, :meth:`Runner.acheck`), for one cluster
(``slurm_conf``) with an optional prefix (``sudo -u USER``). Output is decoded with
replacement: a job name in bytes that are not UTF-8 is text, not a crash. Tests inject
faults by subclassing :class:`Runner` and overriding :meth:`Runner.execute`.

:func:`wait_until` is the one polling loop with a deadline.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class SlurmCommandError(RuntimeError):
    """A Slurm command failed; ``stderr`` says why."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        msg = stderr.strip() or stdout.strip() or f"exit status {returncode}"
        super().__init__(f"{argv[0] if argv else 'command'} failed: {msg}")


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr as one message (Slurm tools print errors on either)."""
        return "\n".join(s.strip() for s in (self.stdout, self.stderr) if s.strip())

    def checked(self) -> Result:
        """This result, or :class:`SlurmCommandError` when the command failed."""
        if self.returncode != 0:
            raise SlurmCommandError(self.argv, self.returncode, self.stdout, self.output)
        return self


def command_env(slurm_conf: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    if extra:
        env.update(extra)
    return env


def _decode(data: bytes | None) -> str:
    return (data or b"").decode(errors="replace")


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> Result:
    """Run ``argv`` and wait; a missing program or a timeout is a :class:`SlurmCommandError`
    (exit 127 or -1) whatever ``check`` says."""
    try:
        p = subprocess.run(
            list(argv),
            input=input.encode() if input is not None else None,
            capture_output=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise SlurmCommandError(argv, -1, "", f"timed out after {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise SlurmCommandError(argv, 127, "", f"{argv[0]} not found: is Slurm installed?") from exc
    return _result(argv, p.returncode, _decode(p.stdout), _decode(p.stderr), check)


async def arun(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> Result:
    """:func:`run` for the event loop."""
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
    return _result(argv, proc.returncode or 0, _decode(out), _decode(err), check)


def _result(argv: Sequence[str], code: int, stdout: str, stderr: str, check: bool) -> Result:
    res = Result(list(argv), code, stdout, stderr)
    return res.checked() if check else res


class Runner:
    """Runs commands for one Slurm cluster (``slurm_conf``; None = the environment's),
    each prefixed by ``prefix`` (for example ``["sudo", "-u", user]``)."""

    def __init__(
        self,
        slurm_conf: str | os.PathLike[str] | None = None,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.slurm_conf = str(slurm_conf) if slurm_conf else os.environ.get("SLURM_CONF")
        self.prefix = list(prefix)
        self.timeout = timeout
        self.env = command_env(self.slurm_conf, env)

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]

    # The one place a command is executed (sync); tests override it to inject faults.
    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        try:
            return run(self.argv(argv), env=self.env, input=input, timeout=self.timeout, check=False)
        except SlurmCommandError as exc:  # not found / timed out
            return Result(exc.argv, exc.returncode, exc.stdout, exc.stderr)

    async def aexecute(self, argv: Sequence[str], input: str | None) -> Result:
        try:
            return await arun(self.argv(argv), env=self.env, input=input, timeout=self.timeout, check=False)
        except SlurmCommandError as exc:
            return Result(exc.argv, exc.returncode, exc.stdout, exc.stderr)

    def run(self, argv: Sequence[str], *, input: str | None = None) -> Result:
        """Run ``argv``; never raises for a non-zero exit (read ``returncode``)."""
        return self.execute(argv, input)

    __call__ = run

    def check(self, argv: Sequence[str], *, input: str | None = None) -> str:
        """Run ``argv`` and return its stdout, or raise :class:`SlurmCommandError` with what
        the command printed."""
        return self.execute(argv, input).checked().stdout

    async def arun(self, argv: Sequence[str], *, input: str | None = None) -> Result:
        return await self.aexecute(argv, input)

    async def acheck(self, argv: Sequence[str], *, input: str | None = None) -> str:
        return (await self.aexecute(argv, input)).checked().stdout


class WaitTimeout(TimeoutError):
    """:func:`wait_until` ran out of time."""


def wait_until(
    what: str,
    check: Callable[[], T],
    timeout: float = 60.0,
    *,
    interval: float = 0.25,
    describe: Callable[[], str] | None = None,
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    ``abort`` is asked each round and may return a reason to give up at once (a daemon that
    died). On timeout, raise :class:`WaitTimeout` naming ``what``, the last value seen and
    what ``describe()`` says about the state of things then."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if abort is not None and (why := abort()):
            raise WaitTimeout(f"gave up waiting for {what}: {why}")
        if time.monotonic() >= deadline:
            detail = f"; {describe()}" if describe is not None else ""
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r}){detail}")
        time.sleep(interval)
