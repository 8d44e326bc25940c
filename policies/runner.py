"""How the live-cluster commands run: an injectable command runner (argv lists only).

Everything in :mod:`sandfill.policies` that talks to a live Slurm goes through a
:class:`Runner`, so tests can make one step fail (``scontrol reconfigure``, ``sacctmgr``)
without touching the machine's commands.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sandfill.slurm.commands import Result, SlurmCommandError, command_env, run

RunFn = Callable[[Sequence[str]], Result]


@dataclass
class Runner:
    """Runs Slurm commands for one cluster (``slurm_conf``; None = the environment's)."""

    slurm_conf: str | None = None
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.slurm_conf is None:
            self.slurm_conf = os.environ.get("SLURM_CONF")
        self.env = command_env(self.slurm_conf)

    def __call__(self, argv: Sequence[str], *, input: str | None = None) -> Result:
        """Run ``argv``; never raises for a non-zero exit (the caller reads ``returncode``)."""
        try:
            return run(argv, env=self.env, input=input, timeout=self.timeout, check=False)
        except SlurmCommandError as exc:  # not found / timed out
            return Result(list(argv), exc.returncode, exc.stdout, exc.stderr)

    def check(self, argv: Sequence[str], *, input: str | None = None) -> str:
        """Run ``argv`` and return its stdout, or raise :class:`SlurmCommandError` with what
        the command printed (Slurm tools put errors on stdout or stderr)."""
        res = self(argv, input=input)
        if res.returncode != 0:
            raise SlurmCommandError(res.argv, res.returncode, res.stdout, output(res))
        return res.stdout


def output(res: Result) -> str:
    """stdout and stderr of ``res`` as one message (sacctmgr prints errors on either)."""
    return "\n".join(s.strip() for s in (res.stdout, res.stderr) if s.strip())
