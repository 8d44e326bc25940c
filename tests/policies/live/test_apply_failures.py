"""An apply that fails in any way after its first change -- a step's command fails, a
read-back raises (busy controller), the fragment write raises OSError (disk full), SIGINT or
SIGTERM arrives, an unexpected exception -- leaves the previous configuration in force (byte
for byte) and records a "failed" history entry; two concurrent applies end in one policy,
as the history says; `rollback` brings back an earlier applied policy."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from sandfill.cli import main
from sandfill.policies.document.load import load_policy
from sandfill.policies.live.apply import Applier, ApplyFailed
from sandfill.policies.live.history import History
from sandfill.slurm import sacctmgr
from sandfill.slurm.commands import Result, Runner, SlurmCommandError, wait_until

pytestmark = pytest.mark.slurm
DATA = Path(__file__).parent / "data"
SHORT = DATA / "short-tier.yaml"
BAD_POLICIES = Path(__file__).parents[1] / "document" / "bad_policies"
WIDE = DATA / "wide-tier.yaml"


def _injected(argv: Sequence[str], real: Result | None) -> Result:
    return Result(list(argv), 1, "", "injected failure")


class FailingRunner(Runner):
    """Runs every command for real; the first one starting with ``fail_on`` (once one
    starting with ``after`` has run, when given) then meets ``fault``: it gets the argv and
    the real result (None when ``run_it`` is off) and returns a Result or raises."""

    def __init__(self, conf: str, fail_on: Sequence[str], *, run_it: bool = True,
                 after: Sequence[str] = (),
                 fault: Callable[[Sequence[str], Result | None], Result] = _injected) -> None:
        super().__init__(conf)
        self.fail_on = list(fail_on)
        self.after = list(after)
        self.seen_after = not self.after
        self.run_it = run_it
        self.fault = fault
        self.failed = False

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        if not self.failed and self.seen_after and list(argv[: len(self.fail_on)]) == self.fail_on:
            self.failed = True
            return self.fault(argv, super().execute(argv, input) if self.run_it else None)
        if list(argv[: len(self.after)]) == self.after:
            self.seen_after = True
        return super().execute(argv, input)


def _apply_cli(conf: str, path, capsys) -> None:
    rc = main(["policy", "apply", str(path), "--slurm-conf", conf, "--yes"])
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err


@pytest.mark.parametrize(
    ("fail_on", "step"),
    [
        (["scontrol", "reconfigure"], "scontrol reconfigure"),
        (["sacctmgr", "-i", "modify", "qos"], "sacctmgr"),
    ],
)
def test_failed_step_leaves_previous_configuration(
    conf: str, private_cluster, capsys, snapshot, fail_on, step
) -> None:
    _apply_cli(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    plain = Runner(conf)
    before = snapshot(plain, fragment)
    runner = FailingRunner(conf, fail_on)
    with pytest.raises(ApplyFailed) as exc:
        Applier(runner, fragment).apply(load_policy(WIDE), action="test")
    assert runner.failed
    assert exc.value.step == step
    assert exc.value.restored, exc.value.restore_notes
    assert "injected failure" in str(exc.value)
    after = snapshot(plain, fragment)
    assert after[:2] == before[:2]  # fragment bytes and live Slurm/QOS state
    rec = History(fragment).records()[-1]
    assert rec.status == "failed" and step in rec.message
    assert main(["policy", "diff", str(SHORT), "--slurm-conf", conf]) == 0
    assert capsys.readouterr().out == ""


def test_rollback_restores_an_earlier_policy(conf: str, private_cluster, capsys) -> None:
    _apply_cli(conf, SHORT, capsys)
    _apply_cli(conf, WIDE, capsys)
    assert main(["policy", "diff", str(WIDE), "--slurm-conf", conf]) == 0
    capsys.readouterr()
    assert main(["policy", "history", "--slurm-conf", conf]) == 0
    listing = capsys.readouterr().out
    assert "wide-tier" in listing and "short-tier" in listing
    assert main(["policy", "rollback", "--slurm-conf", conf]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["policy", "diff", str(SHORT), "--slurm-conf", conf]) == 0
    assert capsys.readouterr().out == ""
    recs = History(private_cluster.layout.policy_conf).records()
    assert recs[-1].action.startswith("rollback to ") and recs[-1].status == "applied"
    assert recs[-1].policy["name"] == "short-tier"
    # and forward again, by id
    wide_id = max(r.id for r in recs if r.policy["name"] == "wide-tier" and r.in_force)
    assert main(["policy", "rollback", str(wide_id), "--slurm-conf", conf]) == 0
    capsys.readouterr()
    assert main(["policy", "diff", str(WIDE), "--slurm-conf", conf]) == 0


def _sigterm_self(argv: Sequence[str], real: Result | None) -> Result:
    os.kill(os.getpid(), signal.SIGTERM)  # a real signal, delivered in this process
    assert real is not None
    return real


def _raise(exc: BaseException) -> Callable[[Sequence[str], Result | None], Result]:
    def fault(argv: Sequence[str], real: Result | None) -> Result:
        raise exc
    return fault


_BUSY = "slurm_load_ctl_conf error: Unable to contact slurm controller (connect failure)"
FAULTS = {
    # a read-back after reconfigure fails: a busy controller (SlurmCommandError in verify)
    "busy-controller": (dict(fail_on=["scontrol", "show", "config"], after=["scontrol", "reconfigure"],
                             run_it=False, fault=lambda argv, _r: Result(list(argv), 1, "", _BUSY)),
                        "verify", "Unable to contact slurm controller"),
    "sigterm": (dict(fail_on=["scontrol", "reconfigure"], fault=_sigterm_self),
                "scontrol reconfigure", "interrupted by SIGTERM"),
    "ctrl-c": (dict(fail_on=["scontrol", "reconfigure"], fault=_raise(KeyboardInterrupt())),
               "scontrol reconfigure", "interrupted by SIGINT"),
    "timeout": (dict(fail_on=["scontrol", "reconfigure"], fault=_raise(
        SlurmCommandError(["scontrol", "reconfigure"], -1, "", "timed out after 60 s"))),
        "scontrol reconfigure", "timed out after 60 s"),
    "unexpected": (dict(fail_on=["sacctmgr", "-i", "modify", "qos"],
                        fault=_raise(ValueError("embedded null byte"))),
                   "sacctmgr", "ValueError: embedded null byte"),
}


@contextmanager
def _signals_fail_the_test() -> Iterator[None]:
    """A SIGTERM or KeyboardInterrupt the apply lets through fails this test instead of
    ending the test session (and leaving its devcluster running)."""
    def escaped(signum: int, _frame: object) -> None:
        raise AssertionError(f"signal {signum} reached the test: the apply did not take it")

    old = signal.signal(signal.SIGTERM, escaped)
    try:
        yield
    except KeyboardInterrupt:
        raise AssertionError("KeyboardInterrupt escaped the apply") from None
    finally:
        signal.signal(signal.SIGTERM, old)


@pytest.mark.parametrize("kind", list(FAULTS))
def test_any_failure_after_the_first_change_restores_and_records(
    conf: str, private_cluster, capsys, snapshot, kind: str
) -> None:
    _apply_cli(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    plain = Runner(conf)
    before = snapshot(plain, fragment)
    options, step, words = FAULTS[kind]
    runner = FailingRunner(conf, **options)
    with pytest.raises(ApplyFailed) as exc, _signals_fail_the_test():
        Applier(runner, fragment).apply(load_policy(WIDE), action="test")
    assert runner.failed
    assert exc.value.step == step, exc.value
    assert exc.value.restored, exc.value.restore_notes
    assert words in str(exc.value)
    after = snapshot(plain, fragment)
    assert after[:2] == before[:2]  # fragment bytes and live Slurm/QOS state
    assert len(after[2]) == len(before[2]) + 1  # one record more: the failure
    rec = History(fragment).records()[-1]
    assert rec.status == "failed" and words in rec.message and step in rec.message
    assert main(["policy", "diff", str(SHORT), "--slurm-conf", conf]) == 0


@pytest.mark.parametrize("history_full", [False, True], ids=["fragment-full", "all-full"])
def test_disk_full_on_the_fragment_write_restores_the_qos(
    conf: str, private_cluster, capsys, snapshot, monkeypatch, history_full: bool
) -> None:
    import sandfill.policies.live.apply as apply_mod
    import sandfill.policies.live.history as history_mod

    _apply_cli(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    plain = Runner(conf)
    before = snapshot(plain, fragment)
    real = apply_mod.write_atomic

    def full(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        if path == fragment and data != before[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data, mode=mode)

    def history_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(apply_mod, "write_atomic", full)
    if history_full:
        monkeypatch.setattr(history_mod, "write_atomic", history_write)
    rc = main(["policy", "apply", str(WIDE), "--slurm-conf", conf, "--yes"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "FAILED" in err and "step 'write fragment'" in err and "No space left on device" in err
    assert "the previous configuration is back in force" in err
    assert "not applied" not in err
    after = snapshot(plain, fragment)
    assert after[:2] == before[:2]  # the QOS changed in step 1 are back too
    if history_full:
        assert "the failure could not be recorded" in err
        assert after[2] == before[2]
    else:
        assert History(fragment).records()[-1].status == "failed"


# A `sandfill policy apply` in its own process whose `scontrol reconfigure` (after it ran)
# hangs until a signal comes: SIGUSR1 lets it go on, anything else is what it is.
DRIVER = """
import os, signal, sys
from pathlib import Path
from sandfill.cli import main
from sandfill.slurm.commands import Runner

marker = Path(sys.argv[1])
real = Runner.execute
signal.signal(signal.SIGUSR1, lambda *_: None)

def execute(self, argv, input):
    res = real(self, argv, input)
    if list(argv[:2]) == ["scontrol", "reconfigure"] and not marker.exists():
        marker.write_text(str(os.getpid()))
        signal.pause()
    return res

Runner.execute = execute
sys.exit(main(["policy", "apply", *sys.argv[2:]]))
"""


def _hung_apply(tmp_path: Path, conf: str, policy: Path) -> tuple[subprocess.Popen[str], Path]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    marker = tmp_path / "at-reconfigure"
    proc = subprocess.Popen([sys.executable, str(driver), str(marker), str(policy),
                             "--slurm-conf", conf, "--yes"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_until("the apply to reach its reconfigure step", marker.exists, 120,
               abort=lambda: proc.poll() is not None and f"it ended: {proc.communicate()}")
    return proc, marker


def test_sigterm_mid_apply_restores_in_order(
    conf: str, private_cluster, capsys, snapshot, tmp_path: Path
) -> None:
    _apply_cli(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    plain = Runner(conf)
    before = snapshot(plain, fragment)
    proc, _marker = _hung_apply(tmp_path, conf, WIDE)
    try:
        assert fragment.read_bytes() != before[0]  # the new fragment is in force now
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert "FAILED" in err and "interrupted by SIGTERM" in err, err
    assert "the previous configuration is back in force" in err
    after = snapshot(plain, fragment)
    assert after[:2] == before[:2]
    rec = History(fragment).records()[-1]
    assert rec.status == "failed" and "SIGTERM" in rec.message


def test_two_concurrent_applies_end_in_one_policy(
    conf: str, private_cluster, capsys, snapshot, tmp_path: Path
) -> None:
    _apply_cli(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    n_before = len(History(fragment).records())
    proc, _marker = _hung_apply(tmp_path, conf, WIDE)
    try:
        rc = main(["policy", "apply", str(SHORT), "--slurm-conf", conf, "--yes"])
        err = capsys.readouterr().err
        assert rc == 1
        assert "not applied" in err and "holds" in err and "nothing was changed" in err
        proc.send_signal(signal.SIGUSR1)  # the first apply goes on
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out, err)
    recs = History(fragment).records()
    assert len(recs) == n_before + 1  # the refused apply left no record
    assert recs[-1].status == "applied" and recs[-1].policy["name"] == "wide-tier"
    assert main(["policy", "diff", str(WIDE), "--slurm-conf", conf]) == 0


class RacingRunner(FailingRunner):
    """As FailingRunner (``scontrol reconfigure`` fails); with ``race``, another admin adds
    the QOS ``qos`` just before this apply's own ``add qos`` runs."""

    def __init__(self, conf: str, qos: str, *, race: bool) -> None:
        super().__init__(conf, ["scontrol", "reconfigure"])
        self.add = list(sacctmgr.add_qos_argv(qos))
        self.race = race

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        if self.race and list(argv) == self.add:
            self.race = False
            Runner.execute(self, argv, input).checked()  # the other admin's QOS
        return super().execute(argv, input)


@pytest.mark.parametrize("race", [False, True], ids=["ours", "another-admins"])
def test_the_restore_deletes_only_the_qos_this_apply_created(
    conf: str, private_cluster, capsys, snapshot, tmp_path: Path, race: bool
) -> None:
    _apply_cli(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    plain = Runner(conf)
    before = snapshot(plain, fragment)
    extra = yaml.safe_load(WIDE.read_text())
    extra["tiers"]["extra"] = {"max_walltime": "30:00", "qos": {"name": "h2extra"}}
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump(extra))
    runner = RacingRunner(conf, "h2extra", race=race)
    try:
        with pytest.raises(ApplyFailed) as exc:
            Applier(runner, fragment).apply(load_policy(path), action="test")
        qos = sacctmgr.parse_qos(plain.check(sacctmgr.show_qos_argv()))
        assert fragment.read_bytes() == before[0]
        if race:  # not ours: kept, and the restore says the state is not as before
            assert "h2extra" in qos
            assert not exc.value.restored
        else:
            assert "h2extra" not in qos
            assert exc.value.restored, exc.value.restore_notes
            assert snapshot(plain, fragment)[:2] == before[:2]
    finally:
        plain(sacctmgr.delete_qos_argv("h2extra"))
