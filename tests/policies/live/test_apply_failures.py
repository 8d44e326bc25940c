"""An apply whose `sacctmgr` or `scontrol reconfigure` step fails leaves the previous
configuration in force (byte for byte); `rollback` brings back an earlier applied policy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from sandfill.cli import main
from sandfill.policies.document.load import load_policy
from sandfill.policies.live.apply import Applier, ApplyFailed
from sandfill.policies.live.history import History
from sandfill.slurm.commands import Result, Runner

pytestmark = pytest.mark.slurm
DATA = Path(__file__).parent / "data"
SHORT = DATA / "short-tier.yaml"
BAD_POLICIES = Path(__file__).parents[1] / "document" / "bad_policies"
WIDE = DATA / "wide-tier.yaml"


class FailingRunner(Runner):
    """Runs every command for real; the first one starting with ``fail_on`` then reports
    a failure (after it really ran: the restore has a real change to undo)."""

    def __init__(self, conf: str, fail_on: Sequence[str], *, run_it: bool = True) -> None:
        super().__init__(conf)
        self.fail_on = list(fail_on)
        self.run_it = run_it
        self.failed = False

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        if not self.failed and list(argv[: len(self.fail_on)]) == self.fail_on:
            self.failed = True
            if self.run_it:
                super().execute(argv, input)
            return Result(list(argv), 1, "", "injected failure")
        return super().execute(argv, input)


def _apply_cli(conf: str, path, capsys) -> None:
    rc = main(["policy", "apply", str(path), "--slurm-conf", conf])
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
