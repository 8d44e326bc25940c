"""Apply a policy to a live cluster as one transaction, and roll it back if any step fails.

Steps, in this order (partitions name their QOS, so the QOS must exist before the
partitions that use them are reconfigured):

1. ``sacctmgr -i add qos`` for each new QOS ("Nothing new added" is fine) and
   ``sacctmgr -i modify qos ... set`` for every QOS of the policy (with slurmdbd only);
2. the fragment is replaced atomically (same mode);
3. ``scontrol reconfigure``;
4. the live state is read back and must equal the policy key by key.

If a step fails, the previous fragment bytes are written back, slurmctld is reconfigured
to them, every QOS the apply touched is set back to its previous values (QOS it created
are deleted), and the error says which step failed and whether the restore was complete
(the raw ``scontrol show config``/``partition``/``sacctmgr show qos`` outputs are compared
with the ones from before). Settings ``scontrol reconfigure`` cannot change
(:data:`~sandfill.policies.document.compare.RESTART_KEYS`) are written to the fragment and reported
as waiting for a slurmctld restart, never silently dropped.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sandfill.policies.document.compare import Change, diff_policies
from sandfill.policies.document.load import policy_to_mapping
from sandfill.policies.document.model import Policy
from sandfill.policies.document.render import qos_settings
from sandfill.policies.live.current import LivePolicy, read_policy
from sandfill.policies.live.fragment import fragment_nodes, render_fragment, write_atomic
from sandfill.policies.live.history import History, Record
from sandfill.policies.live.state import LiveState, read_live
from sandfill.slurm import sacctmgr, scontrol
from sandfill.slurm.commands import Runner

_RESTART_MSG = "requires restart"


class ApplyFailed(RuntimeError):
    """A step failed; ``restored`` says whether the previous state is back in force."""

    def __init__(self, step: str, detail: str, restored: bool, restore_notes: list[str]) -> None:
        self.step = step
        self.detail = detail
        self.restored = restored
        self.restore_notes = restore_notes
        state = (
            "the previous configuration is back in force"
            if restored
            else "RESTORE INCOMPLETE: " + "; ".join(restore_notes)
        )
        super().__init__(f"apply failed at step '{step}': {detail}\n{state}")


@dataclass
class ApplyResult:
    record: Record | None
    changes: list[Change]
    restart_pending: list[Change] = field(default_factory=list)
    unchanged: bool = False


@dataclass
class Applier:
    runner: Runner
    fragment: Path
    nodes: str | None = None
    who: str | None = None
    log: Callable[[str], None] = lambda _msg: None

    def apply(self, policy: Policy, *, action: str) -> ApplyResult:
        history = History(self.fragment)
        with history.lock():
            return self._apply(policy, action, history)

    # -----------------------------------------------------------------------------------
    def _apply(self, policy: Policy, action: str, history: History) -> ApplyResult:
        before = read_policy(self.runner, self.fragment)
        old_bytes = self.fragment.read_bytes()
        old_mode = self.fragment.stat().st_mode & 0o777
        accounting = before.state.accounting
        changes = self._changes(before, policy, accounting)
        nodes = self.nodes or fragment_nodes(old_bytes.decode()) or self._partition_nodes(before)
        new_text = render_fragment(policy, nodes=nodes, accounting=accounting)
        if not changes and new_text.encode() == old_bytes:
            return ApplyResult(None, [], unchanged=True)
        restart = [c for c in changes if c.needs_restart]
        created: list[str] = []
        touched: list[str] = []
        step = "sacctmgr"
        try:
            if accounting:
                self._qos(policy, before.state, created, touched)
            step = "write fragment"
            write_atomic(self.fragment, new_text.encode(), mode=old_mode)
            self.log(f"wrote {self.fragment}")
            step = "scontrol reconfigure"
            self._reconfigure(tolerate_restart=bool(restart))
            step = "verify"
            self._verify(policy, accounting, restart)
        except _StepError as exc:
            restored, notes = self._restore(old_bytes, old_mode, before.state, created, touched)
            err = ApplyFailed(step, str(exc), restored, notes)
            history.add(self._record(history, action, "failed", changes, policy, str(err), []))
            raise err from None
        status = "restart-pending" if restart else "applied"
        msg = ""
        if restart:
            msg = "waiting for a slurmctld restart: " + "; ".join(
                f"{c} [{c.needs_restart}]" for c in restart
            )
        rec = self._record(history, action, status, changes, policy, msg, restart)
        history.add(rec)
        return ApplyResult(rec, changes, restart)

    def _changes(self, before: LivePolicy, policy: Policy, accounting: bool) -> list[Change]:
        if before.policy is None:
            return [Change("<live>", "not a valid policy", "replaced by " + policy.name)]
        return diff_policies(before.policy, policy, accounting=accounting)

    @staticmethod
    def _partition_nodes(before: LivePolicy) -> str:
        nodes = {p.get("Nodes", "") for p in before.state.partitions}
        nodes.discard("")
        if len(nodes) != 1:
            raise ApplyRefused(
                "the live partitions do not share one node list: give --nodes NODELIST"
            )
        return nodes.pop()

    def _qos(self, policy: Policy, state: LiveState, created: list[str], touched: list[str]) -> None:
        for name, settings in qos_settings(policy):
            if name not in state.qos:
                argv = sacctmgr.add_qos_argv(name)
                res = self.runner(argv)
                text = res.output
                if res.returncode != 0 and not sacctmgr.is_no_change(text):
                    raise _StepError(f"`{' '.join(argv)}` failed: {text or res.returncode}")
                created.append(name)
                self.log(" ".join(argv))
            argv = sacctmgr.modify_qos_argv(name, settings)
            res = self.runner(argv)
            if name not in touched:
                touched.append(name)
            if res.returncode != 0:
                raise _StepError(f"`{' '.join(argv)}` failed: {res.output or res.returncode}")
            self.log(" ".join(argv))

    def _reconfigure(self, *, tolerate_restart: bool) -> None:
        res = self.runner(scontrol.reconfigure_argv())
        if res.returncode == 0:
            return
        text = res.output
        if tolerate_restart and _RESTART_MSG in text:
            self.log(f"scontrol reconfigure: {text}")
            return
        raise _StepError(f"`scontrol reconfigure` failed: {text or f'exit {res.returncode}'}")

    def _verify(self, policy: Policy, accounting: bool, restart: list[Change]) -> None:
        after = read_policy(self.runner, self.fragment)
        if after.policy is None:
            raise _StepError(f"the live settings do not read back as a policy: {after.error}")
        skip = tuple(c.key.split(".")[0] + "." for c in restart)
        left = [
            c for c in diff_policies(after.policy, policy, accounting=accounting)
            if not c.key.startswith(skip)
        ]
        if left:
            raise _StepError(
                "the live cluster does not match the policy after reconfigure: "
                + "; ".join(str(c) for c in left)
            )

    def _restore(
        self,
        old_bytes: bytes,
        old_mode: int,
        before: LiveState,
        created: list[str],
        touched: list[str],
    ) -> tuple[bool, list[str]]:
        notes: list[str] = []
        try:
            if self.fragment.read_bytes() != old_bytes:
                write_atomic(self.fragment, old_bytes, mode=old_mode)
        except OSError as exc:
            notes.append(f"could not write back {self.fragment}: {exc}")
        res = self.runner(scontrol.reconfigure_argv())
        if res.returncode != 0 and _RESTART_MSG not in res.output:
            notes.append(f"scontrol reconfigure (restore) failed: {res.output}")
        for name in touched:
            row = before.qos.get(name)
            if row is None:
                continue
            r = self.runner(sacctmgr.modify_qos_argv(name, row.settings()))
            if r.returncode != 0:
                notes.append(f"could not restore QOS {name}: {r.output}")
        for name in created:
            r = self.runner(sacctmgr.delete_qos_argv(name))
            if r.returncode != 0:
                notes.append(f"could not delete QOS {name} created by this apply: {r.output}")
        try:
            now = read_live(self.runner)
            if now.fingerprint() != before.fingerprint():
                notes.append("the live state read back differs from the state before the apply")
        except Exception as exc:  # noqa: BLE001 - report, do not mask the original failure
            notes.append(f"could not read the state back: {exc}")
        return not notes, notes

    def _record(
        self,
        history: History,
        action: str,
        status: str,
        changes: list[Change],
        policy: Policy,
        message: str,
        restart: list[Change],
    ) -> Record:
        return Record(
            id=history.next_id(),
            when=datetime.now().astimezone().isoformat(timespec="seconds"),
            who=self.who or os.environ.get("SUDO_USER") or getpass.getuser(),
            action=action,
            status=status,
            changes=[str(c) for c in changes],
            policy=policy_to_mapping(policy),
            message=message,
            fragment=str(self.fragment),
            restart_pending=[str(c) for c in restart],
        )


class ApplyRefused(RuntimeError):
    """Nothing was changed: the apply could not even start (the message says why)."""


class _StepError(RuntimeError):
    pass
