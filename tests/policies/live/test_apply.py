"""apply / show / diff against a real (private) devcluster: the policy takes effect in
Slurm, reads back equal, and a refused or failed apply changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandfill.cli import main
from sandfill.dev.testing import TestSlurm, sleep_script
from sandfill.policies.document.compare import effective_mapping
from sandfill.policies.document.load import load_policy
from sandfill.slurm.commands import Runner, wait_until

pytestmark = pytest.mark.slurm
DATA = Path(__file__).parent / "data"
SHORT = DATA / "short-tier.yaml"
BAD_POLICIES = Path(__file__).parents[1] / "document" / "bad_policies"


def _apply(conf: str, path: Path, capsys) -> str:
    rc = main(["policy", "apply", str(path), "--slurm-conf", conf, "--yes"])
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    return out.out


def test_show_after_apply_is_the_policy_and_diff_is_empty(conf: str, tmp_path, capsys) -> None:
    out = _apply(conf, SHORT, capsys)
    assert "verified" in out
    shown = tmp_path / "live.yaml"
    assert main(["policy", "show", "--slurm-conf", conf, "-o", str(shown)]) == 0
    capsys.readouterr()
    live = load_policy(shown)
    wanted = load_policy(SHORT)
    assert live == wanted  # every key, the name and the tier order included
    assert main(["policy", "check", str(shown), "--nodes", "4", "--cpus-per-node", "8"]) == 0
    capsys.readouterr()
    assert main(["policy", "diff", str(SHORT), "--slurm-conf", conf]) == 0
    assert capsys.readouterr().out == ""
    # applying it again changes nothing
    assert "already in force" in _apply(conf, SHORT, capsys)


def test_diff_lists_changes_key_by_key(conf: str, capsys) -> None:
    _apply(conf, SHORT, capsys)
    assert main(["policy", "diff", str(DATA / "wide-tier.yaml"), "--slurm-conf", conf]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "~ tiers.short.max_walltime: 00:10:00 -> 00:20:00" in out
    assert "~ tiers.short.qos.priority: 500 -> 400" in out
    assert "~ scheduler.backfill.interval: 5 -> 10" in out
    assert any(line.startswith("- tiers.interactive:") for line in out)


def test_short_job_jumps_the_batch_queue_and_the_cap_holds(
    conf: str, client: TestSlurm, capsys
) -> None:
    _apply(conf, SHORT, capsys)
    rock = client.submit_sync(sleep_script(300), ["-p", "batch", "-n", "32", "-t", "10"])
    wait_until("the rock to run", lambda: client.squeue_sync([rock])[rock].running, 30)
    batch = client.submit_sync(sleep_script(120), ["-p", "batch", "-n", "32", "-t", "5"])
    short = client.submit_sync(sleep_script(120), ["-p", "short", "-n", "4", "-t", "2"])
    wait_until("both to queue", lambda: all(
        s.pending for s in client.squeue_sync([batch, short]).values()), 30)
    client_cancel(client, rock)
    st = wait_until("the short job to start", lambda: (
        s := client.squeue_sync([batch, short]))[short].running and s, 30)
    assert st[batch].pending, st[batch]  # submitted earlier, still waiting
    assert st[short].partition == "short"
    # the same user is at the short tier's 4-CPU cap: a fifth CPU waits with the QOS reason
    over = client.submit_sync(sleep_script(60), ["-p", "short", "-n", "1", "-t", "2"])
    st = wait_until("the QOS reason", lambda: (
        s := client.squeue_sync([over])[over]).reason == "QOSMaxCpuPerUserLimit" and s, 30)
    assert st.pending


def client_cancel(client: TestSlurm, job: str) -> None:
    client.cancel_sync([job], check=True)


BAD_CASES = {
    "wrong_types.yaml": "tiers.batch.max_nodes",
    "unknown_keys.yaml": "unknown key",
    "negative.yaml": "greater than or equal to 0 (got -1)",
    "walltime_above_max.yaml": "must not exceed the tier's max_walltime",
    "missing_role_tier.yaml": "names no tier",
    "not_mapping.yaml": "must be a mapping",
    "invalid_yaml.yaml": "invalid YAML",
    "no_tiers.yaml": "tiers: is required",
}


def _bad_files(tmp: Path) -> dict[Path, str]:
    files = {BAD_POLICIES / name: msg for name, msg in BAD_CASES.items()}
    too_big = yaml.safe_load(SHORT.read_text())
    too_big["tiers"]["short"]["max_nodes"] = 9
    p = tmp / "too_many_nodes.yaml"
    p.write_text(yaml.safe_dump(too_big))
    files[p] = "tiers.short.max_nodes: exceeds the cluster's 4 nodes"
    return files


def test_bad_policies_change_nothing_byte_for_byte(
    conf: str, runner: Runner, private_cluster, tmp_path, capsys, snapshot
) -> None:
    _apply(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    before = snapshot(runner, fragment)
    for path, message in _bad_files(tmp_path).items():
        rc = main(["policy", "apply", str(path), "--slurm-conf", conf, "--yes"])
        err = capsys.readouterr().err
        assert rc == 1, path
        assert message in err, (path.name, err)
        assert "nothing was changed" in err
        assert snapshot(runner, fragment) == before, path.name
    with pytest.raises(SystemExit) as exc:  # an unknown flag: argparse refuses
        main(["policy", "apply", str(SHORT), "--slurm-conf", conf, "--force-it"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --force-it" in capsys.readouterr().err
    assert snapshot(runner, fragment) == before
    assert effective_mapping(load_policy(SHORT)) == effective_mapping(
        _show(conf, tmp_path, capsys))


def _show(conf: str, tmp: Path, capsys):
    out = tmp / "shown.yaml"
    assert main(["policy", "show", "--slurm-conf", conf, "-o", str(out)]) == 0
    capsys.readouterr()
    return load_policy(out)


def _first_expected_value(path: Path) -> str:
    """The bad value the file's first ``# expect:`` line says the error names."""
    line = next(ln for ln in path.read_text(encoding="utf-8").split("\n")
                if ln.startswith("# expect:"))
    return line.partition("|")[2].strip().partition(" is not")[0]


def test_injection_payloads_are_refused_live_and_change_nothing(
    conf: str, runner: Runner, private_cluster, capsys, snapshot
) -> None:
    _apply(conf, SHORT, capsys)
    fragment = private_cluster.layout.policy_conf
    before = snapshot(runner, fragment)
    payloads = sorted(BAD_POLICIES.glob("inject_*.yaml"))
    assert len(payloads) >= 5
    for path in payloads:
        rc = main(["policy", "apply", str(path), "--slurm-conf", conf, "--yes"])
        err = capsys.readouterr().err
        assert rc == 1, path.name
        assert _first_expected_value(path) in err, (path.name, err)
        assert "is not a Slurm name" in err and "nothing was changed" in err
        assert snapshot(runner, fragment) == before, path.name  # fragment, live state, history
    for nodes in ("node[1-4]\nPrologSlurmctld=/tmp/x.sh", "node[1-4]#", "node[1-4] Default=YES"):
        rc = main(["policy", "apply", str(DATA / "wide-tier.yaml"), "--slurm-conf", conf,
                   "--nodes", nodes, "--yes"])
        err = capsys.readouterr().err
        assert rc == 1 and repr(nodes) in err and "nothing was changed" in err, err
        assert "not applied" in err
        assert snapshot(runner, fragment) == before, nodes
    assert b"PrologSlurmctld" not in fragment.read_bytes()
