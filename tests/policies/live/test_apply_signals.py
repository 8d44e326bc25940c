"""The apply's signal guard and its refusals before the first change (no cluster needed):
a signal raises once, then waits; the old handlers come back; a rollback chooses its
target under the lock."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from sandfill.policies.live.apply import Applier, ApplyRefused, Interrupted, SignalGuard
from sandfill.policies.live.history import History
from sandfill.slurm.commands import Result, Runner


def test_the_first_signal_raises_later_ones_wait() -> None:
    old = signal.getsignal(signal.SIGTERM)
    guard = SignalGuard()
    with pytest.raises(Interrupted) as exc, guard.installed():
        os.kill(os.getpid(), signal.SIGTERM)
    assert exc.value.signum == signal.SIGTERM and "SIGTERM" in str(exc.value)
    assert signal.getsignal(signal.SIGTERM) is old
    guard = SignalGuard()
    with guard.installed():
        guard.armed = False
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert guard.held == ["SIGTERM", "SIGINT"]
    assert signal.getsignal(signal.SIGTERM) is old


def test_an_ignored_signal_stays_ignored() -> None:
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with SignalGuard().installed():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # ignored: nothing raised
    finally:
        signal.signal(signal.SIGHUP, old)


class _NoSlurm(Runner):
    """Any command is a failure the test would see: nothing may be run."""

    def execute(self, argv, input):  # noqa: A002 - Runner's signature
        raise AssertionError(f"ran {argv}")


class _DeadController(Runner):
    def execute(self, argv, input):  # noqa: A002
        return Result(list(argv), 1, "", "Unable to contact slurm controller (connect failure)")


@pytest.fixture
def fragment(tmp_path: Path) -> Path:
    frag = tmp_path / "policy.conf"
    frag.write_text("# policy\n")
    return frag


def test_a_rollback_while_another_apply_runs_is_refused_first(fragment: Path) -> None:
    from sandfill.policies import load_policy
    from sandfill.policies.document.load import policy_to_mapping
    from sandfill.policies.live.history import Record

    hist = History(fragment)
    for rid in (1, 2):
        policy = policy_to_mapping(load_policy())
        policy["name"] = f"p{rid}"
        hist.add(Record(rid, "now", "root", "apply", "applied", [], policy))
    with hist.lock(), pytest.raises(ApplyRefused, match="holds .*nothing was changed"):
        Applier(_NoSlurm(None), fragment).rollback()
    with pytest.raises(ApplyRefused, match="record 5 .*nothing was changed"):
        Applier(_NoSlurm(None), fragment).rollback(5)


def test_a_cluster_that_cannot_be_read_is_not_applied(fragment: Path) -> None:
    from sandfill.policies import load_policy

    with pytest.raises(ApplyRefused, match="Unable to contact .*nothing was changed"):
        Applier(_DeadController(None), fragment).apply(load_policy(), action="test")
    assert fragment.read_text() == "# policy\n"
    assert History(fragment).records() == []
