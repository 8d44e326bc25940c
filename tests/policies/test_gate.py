"""The simulation gate before apply (sandfill.policies.gate), on fake sacct text: the table's
figures and deltas, an empty history, sacct failing, and the confirmation's decisions; and
(marked ``slurm``) ``policy apply`` on the private devcluster's own sacct: the table, the
refusals that change nothing, the answer on a terminal, ``--no-simulate`` recorded."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from sandfill.cli import main
from sandfill.dev.testing import TestSlurm, sleep_script
from sandfill.policies.document.load import load_policy, policy_from_mapping
from sandfill.policies.document.model import ClusterShape, Policy
from sandfill.policies.gate import (
    HistoryUnavailable,
    confirmation,
    effect_rows,
    effect_table,
    read_history,
    simulated_effect,
    window,
)
from sandfill.policies.live.history import History
from sandfill.policies.sim.sacct import workload_from_sacct_text
from sandfill.slurm.commands import Result, Runner, wait_until
from sandfill.slurm.sacct import HISTORY_FORMAT, history_argv, parse_history

BASE = Path(__file__).parents[1] / "data" / "devcluster-policy.yaml"
LIVE_DATA = Path(__file__).parent / "live" / "data"
SHORT = LIVE_DATA / "short-tier.yaml"
WIDE = LIVE_DATA / "wide-tier.yaml"
SHAPE = ClusterShape(4, 8)
T0 = datetime(2026, 12, 1, 9, 0, 0)


def sacct_text(jobs: Sequence[tuple[int, str, int, int, int, int]]) -> str:
    """``sacct -P`` history for (id, partition, submit s, start s, run s, cpus) rows."""
    lines = [HISTORY_FORMAT.replace(",", "|")]
    for jid, part, sub, start, run, cpus in jobs:
        ts = [(T0 + timedelta(seconds=s)).isoformat() for s in (sub, start, start + run)]
        lines.append(f"{jid}|root|{part}|{ts[0]}|{ts[1]}|{ts[2]}|{run}|60|{cpus}|1|COMPLETED")
    return "\n".join(lines) + "\n"


# two full-machine batch jobs, then a notebook that arrives while the second one waits
CONTENDED = [(1, "batch", 0, 0, 600, 32), (2, "batch", 10, 600, 600, 32),
             (3, "interactive", 20, 600, 100, 2)]


def notebooks_last(base: Policy) -> Policy:
    """The base policy with the notebook tier below batch (so notebooks wait)."""
    m = yaml.safe_load(BASE.read_text())
    m["name"] = "notebooks-last"
    m["tiers"]["interactive"]["priority_tier"] = 0
    m["tiers"]["interactive"]["qos"]["priority"] = 0
    return policy_from_mapping(m, source="test")


def test_the_table_shows_per_tier_waits_utilization_and_deltas() -> None:
    live = load_policy(BASE)
    new = notebooks_last(live)
    wl = workload_from_sacct_text(sacct_text(CONTENDED))
    effect = simulated_effect(live, new, wl, SHAPE, days=7)
    assert effect is not None and effect.jobs == 3
    rows = {r[0]: r[1:] for r in effect_rows(effect)}
    # live: the notebook goes first when job 1 ends (580 s); new: after job 2 too (1180 s)
    assert rows["tier:interactive median wait"] == ("9.7m", "19.7m", "+10.0m")
    assert rows["tier:batch p95 wait"][2].startswith("-")  # the second batch job gains
    assert rows["tier:interactive jobs"] == ("1", "1", "=")
    assert rows["utilization"][2] == "=" or rows["utilization"][2].endswith("pp")
    assert rows["rejected (no tier admits)"] == ("0", "0", "=")
    assert "tier:burst median wait" not in rows  # a tier no job used is left out
    text = effect_table(effect)
    assert "last 7 day(s)" in text and "live: devcluster-tests" in text and "new: notebooks-last" in text
    assert effect.note == "simulated on 3 job(s) of the last 7 day(s)"


def test_an_invalid_live_policy_shows_the_new_policy_alone() -> None:
    live = load_policy(BASE)
    effect = simulated_effect(None, live, workload_from_sacct_text(sacct_text(CONTENDED)), SHAPE, 1)
    assert effect is not None and effect.live is None
    rows = {r[0]: r[1:] for r in effect_rows(effect)}
    assert rows["all jobs"] == ("-", "3", "")
    assert "live (not a valid policy)" in effect_table(effect)


def test_an_empty_history_is_no_effect() -> None:
    live = load_policy(BASE)
    wl = workload_from_sacct_text(HISTORY_FORMAT.replace(",", "|") + "\n")
    assert simulated_effect(live, live, wl, SHAPE, 7) is None


class FakeSacct(Runner):
    def __init__(self, code: int, stdout: str = "", stderr: str = "") -> None:
        super().__init__(None)
        self.answer = (code, stdout, stderr)
        self.calls: list[list[str]] = []

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.calls.append(list(argv))
        return Result(list(argv), *self.answer)


def test_read_history_asks_for_the_window_and_reads_the_jobs() -> None:
    fake = FakeSacct(0, sacct_text(CONTENDED))
    wl = read_history(fake, 3)
    assert len(wl.jobs) == 3 and "last 3 day(s)" in wl.source
    assert fake.calls[0][-2:] == ["--starttime", "now-3days"]


def test_read_history_fails_clearly_when_accounting_is_down() -> None:
    fake = FakeSacct(1, "", "sacct: error: Problem talking to the database: Connection refused")
    with pytest.raises(HistoryUnavailable, match="Connection refused") as exc:
        read_history(fake, 7)
    assert "now-7days" in str(exc.value)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "7", True])
def test_a_bad_window_is_named(bad: object) -> None:
    with pytest.raises(ValueError, match=repr(bad).replace(".", r"\.")):
        window(bad)  # type: ignore[arg-type]


def _ask(answer: str | None):
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        if answer is None:
            raise EOFError
        return answer

    return ask, asked


@pytest.mark.parametrize(
    ("yes", "tty", "answer", "go", "asked"),
    [
        (True, False, None, True, False),  # --yes: never asks
        (True, True, "n", True, False),
        (False, False, "y", False, False),  # no terminal: refused without asking
        (False, True, "y\n", True, True),
        (False, True, "YES\n", True, True),
        (False, True, "\n", False, True),  # the default is No
        (False, True, "n\n", False, True),
        (False, True, None, False, True),  # end of input
    ],
)
def test_confirmation(yes: bool, tty: bool, answer: str | None, go: bool, asked: bool) -> None:
    ask, questions = _ask(answer)
    why = confirmation(yes=yes, tty=tty, ask=ask)
    assert (why is None) == go
    assert bool(questions) == asked
    if not tty and not yes:
        assert why is not None and "--yes" in why and "not a terminal" in why


# ---- live: `policy apply` on the private devcluster's own sacct ------------------------------


class Terminal(io.StringIO):
    """stdin as a terminal that answers ``text``."""

    def isatty(self) -> bool:
        return True


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["policy", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _some_history(conf: str, client: TestSlurm) -> None:
    """Four short jobs in the short tier, waited for until sacct has them as run."""
    ids = {client.submit_sync(sleep_script(1), ["-p", "short", "-n", "1", "-t", "1",
                                                "-o", "/dev/null"]) for _ in range(4)}
    runner = Runner(conf)

    def recorded() -> bool:
        rows = parse_history(runner.check(history_argv("now-1hour")))
        return ids <= {str(r.job_id) for r in rows if r.ran}

    wait_until("sacct to record the 4 jobs as run", recorded, timeout=90)


@pytest.mark.slurm
def test_apply_shows_the_effect_and_changes_nothing_until_confirmed(
    conf: str, runner: Runner, private_cluster, client: TestSlurm, capsys, snapshot, monkeypatch
) -> None:
    rc, out, err = _cli(capsys, "apply", str(SHORT), "--slurm-conf", conf, "--yes", "--no-simulate")
    assert rc == 0, out + err
    _some_history(conf, client)
    fragment = private_cluster.layout.policy_conf
    before = snapshot(runner, fragment)
    rc, out, err = _cli(capsys, "apply", str(WIDE), "--slurm-conf", conf)  # stdin: no terminal
    with capsys.disabled():
        print(f"\n{out}{err}")
    assert rc == 1
    assert "~ tiers.short.max_walltime: 00:10:00 -> 00:20:00" in out  # the diff first
    assert "simulated effect on the last 7 day(s)" in out and "tier:short median wait" in out
    assert "not a terminal" in err and "--yes" in err and "nothing was changed" in err
    assert snapshot(runner, fragment) == before
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    rc, out, err = _cli(capsys, "apply", str(WIDE), "--slurm-conf", conf, "--history-days", "1")
    assert rc == 1 and "apply this policy? [y/N]" in out and "last 1 day(s)" in out
    assert "not confirmed" in err and snapshot(runner, fragment) == before
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    rc, out, err = _cli(capsys, "apply", str(WIDE), "--slurm-conf", conf)
    assert rc == 0, out + err
    assert "verified" in out
    rec = History(fragment).records()[-1]
    assert rec.status == "applied" and rec.simulation.startswith("simulated on ")
    assert rec.simulation.endswith("job(s) of the last 7 day(s)")


@pytest.mark.slurm
def test_no_simulate_is_recorded_and_shown(conf: str, private_cluster, capsys) -> None:
    rc, out, err = _cli(capsys, "apply", str(SHORT), "--slurm-conf", conf, "--yes")
    assert rc == 0, out + err
    rc, out, err = _cli(capsys, "apply", str(WIDE), "--slurm-conf", conf, "--yes", "--no-simulate")
    assert rc == 0, out + err
    assert "simulated effect" not in out and "not simulated (--no-simulate)" in out
    rec = History(private_cluster.layout.policy_conf).records()[-1]
    assert rec.simulation == "not simulated (--no-simulate)"
    rc, out, _ = _cli(capsys, "history", "--slurm-conf", conf)
    assert rc == 0 and out.splitlines()[-1].endswith("[not simulated (--no-simulate)]")


@pytest.mark.parametrize(("argv", "bad"), [
    (["apply", "p.yaml", "--history-days", "0"], "'0'"),
    (["apply", "p.yaml", "--history-days", "week"], "'week'"),
    (["health", "--days", "-3"], "'-3'"),
])
def test_a_bad_window_on_the_command_line_is_named(argv: list[str], bad: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:  # argparse: before any cluster is asked
        main(["policy", *argv])
    assert exc.value.code == 2
    assert f"must be a whole number of days >= 1, not {bad}" in capsys.readouterr().err
