"""The devcluster's accounting records: its cluster, its account, the policy's QOS and the
users' associations (every QOS granted to every user), set with ``sacctmgr -i``."""

from __future__ import annotations

from collections.abc import Sequence

from sandfill.dev.devcluster import daemons
from sandfill.dev.devcluster.policy import policy_sacctmgr
from sandfill.slurm import sacctmgr
from sandfill.slurm.commands import Runner

ACCOUNT = "sandfill"


def run_sacctmgr(runner: Runner, args: Sequence[str], ok_exists: bool = False) -> None:
    """``sacctmgr -i ARGS``; with ``ok_exists``, "nothing to do" is success."""
    res = runner.run(sacctmgr.immediate_argv(args))
    if res.returncode != 0:
        text = res.output
        if ok_exists and sacctmgr.is_no_change(text):
            return
        raise daemons.DaemonError(f"`sacctmgr -i {' '.join(args)}` failed: {text[-1500:]}")


def init_accounting(runner: Runner, cluster_name: str, policy: str | None, users: Sequence[str]) -> None:
    """The cluster, the account, the policy's QOS and ``users`` (idempotent)."""
    run_sacctmgr(runner, ["add", "cluster", cluster_name], ok_exists=True)
    run_sacctmgr(
        runner,
        ["add", "account", ACCOUNT, f"cluster={cluster_name}", "description=sandfill devcluster", "organization=sandfill"],
        ok_exists=True,
    )
    for argv in policy_sacctmgr(policy):
        run_sacctmgr(runner, argv, ok_exists=True)
    add_users(runner, users)


def add_users(runner: Runner, users: Sequence[str]) -> None:
    """Associations for ``users`` in the account, with every QOS there is."""
    run_sacctmgr(runner, ["add", "user", ",".join(users), f"account={ACCOUNT}"], ok_exists=True)
    qos = qos_names(runner)
    if qos:
        run_sacctmgr(
            runner, ["modify", "user", "where", f"name={','.join(users)}", "set", f"qos={','.join(qos)}"], ok_exists=True
        )


def qos_names(runner: Runner) -> list[str]:
    res = runner.run(sacctmgr.show_qos_argv())
    return list(sacctmgr.parse_qos(res.stdout)) if res.returncode == 0 else []
