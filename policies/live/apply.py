"""Apply a policy to a live cluster as one transaction, and roll it back if any step fails.

Steps, in this order (partitions name their QOS, so the QOS must exist before the
partitions that use them are reconfigured):

1. ``sacctmgr -i add qos`` for each new QOS ("Nothing new added" is fine) and
   ``sacctmgr -i modify qos ... set`` for every QOS of the policy (with slurmdbd only);
2. the fragment is replaced atomically (same mode);
3. ``scontrol reconfigure``;
4. the live state is read back and must equal the policy key by key.

If anything goes wrong once the first change may have been made -- a step's command fails,
a read-back raises (a busy controller), writing the fragment raises ``OSError`` (disk full,
read-only filesystem), SIGINT/SIGTERM/SIGHUP arrives (turned into :class:`Interrupted` for
the apply's duration), the success record cannot be written, or any other exception -- the
previous fragment bytes are written back, slurmctld is reconfigured to them, every QOS the
apply touched is set back to its previous values (QOS it created are deleted), a "failed"
history record is written, and :class:`ApplyFailed` says which step failed and whether the
restore was complete (the raw ``scontrol show config``/``partition``/``sacctmgr show qos``
outputs are compared with the ones from before). Signals that arrive during the restore
wait until it is done. Anything that goes wrong before the first change is
:class:`ApplyRefused`: nothing was changed. Settings ``scontrol reconfigure`` cannot change
(:data:`~sandfill.policies.document.compare.RESTART_KEYS`) are written to the fragment and reported
as waiting for a slurmctld restart, never silently dropped.
"""

from __future__ import annotations

import getpass
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

from sandfill.policies.document.compare import Change, diff_policies
from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import policy_from_mapping, policy_to_mapping
from sandfill.policies.document.model import Policy
from sandfill.policies.document.render import qos_settings, tier_nodes
from sandfill.policies.live.current import LivePolicy, read_policy
from sandfill.policies.live.fragment import fragment_nodes, render_fragment, write_atomic
from sandfill.policies.live.history import History, HistoryLocked, Record, rollback_target
from sandfill.policies.live.state import LiveState, read_live
from sandfill.slurm import sacctmgr, scontrol
from sandfill.slurm.commands import Runner, SlurmCommandError, wait_until

_RESTART_MSG = "requires restart"
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_RESTORE_READ_TIMEOUT = 30.0  # seconds the restore waits for a busy controller to answer


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


class ApplyRefused(RuntimeError):
    """Nothing was changed: the apply could not even start (the message says why)."""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived while an apply was changing the cluster (a
    BaseException, as KeyboardInterrupt is: no ``except Exception`` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class SignalGuard:
    """For an apply's duration: the first SIGINT/SIGTERM/SIGHUP raises :class:`Interrupted`
    while ``armed``; later ones (or any once disarmed) are only kept in ``held``, so the
    restore and the history record are never cut short. Signals the process ignores stay
    ignored; off the main thread (where Python cannot take signals) this does nothing."""

    def __init__(self) -> None:
        self.armed = True
        self.held: list[str] = []

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.armed:
            self.armed = False
            raise Interrupted(signum)
        self.held.append(signal.Signals(signum).name)

    @contextmanager
    def installed(self) -> Iterator[SignalGuard]:
        old: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                if signal.getsignal(sig) not in (signal.SIG_IGN, None):
                    old[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]


def failure_detail(exc: BaseException) -> str:
    """What went wrong, in words (a signal by its name, an OSError with its errno text)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by SIGINT (Ctrl-C)"
    if isinstance(exc, _StepError | Interrupted | SlurmCommandError | OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass
class ApplyResult:
    record: Record | None
    changes: list[Change]
    restart_pending: list[Change] = field(default_factory=list)
    unchanged: bool = False
    policy: Policy | None = None


@dataclass
class _Undo:
    """What the restore needs: the fragment as it was, the live state before, and the QOS
    the apply may have created or changed (noted *before* each command runs)."""

    old_bytes: bytes
    old_mode: int
    before: LiveState
    created: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)
    step: str = ""


@dataclass
class _Plan:
    """An apply worked out before anything changes."""

    policy: Policy
    action: str
    before: LivePolicy
    changes: list[Change]
    restart: list[Change]
    new_text: str
    undo: _Undo


@dataclass
class Applier:
    runner: Runner
    fragment: Path
    nodes: str | None = None
    who: str | None = None
    log: Callable[[str], None] = lambda _msg: None
    simulation: str = ""  # what the gate simulated, for the history record (Record.simulation)

    def apply(self, policy: Policy, *, action: str) -> ApplyResult:
        history = History(self.fragment)
        with self._locked(history):
            return self._apply(policy, action, history)

    def rollback(self, target_id: int | None = None) -> ApplyResult:
        """Re-apply record ``target_id`` (default: the policy before the one in force),
        chosen under the same lock as the apply, so no apply slips in between."""
        history = History(self.fragment)
        with self._locked(history):
            try:
                target = rollback_target(history.records(), target_id)
                policy = policy_from_mapping(target.policy, source=f"history record {target.id}")
            except (LookupError, PolicyError) as exc:
                raise ApplyRefused(f"{exc} (nothing was changed)") from None
            return self._apply(policy, f"rollback to {target.id}", history)

    @staticmethod
    @contextmanager
    def _locked(history: History) -> Iterator[None]:
        try:
            with history.lock():
                yield
        except HistoryLocked as exc:
            raise ApplyRefused(f"{exc}: nothing was changed; try again when it is done") from None

    # -----------------------------------------------------------------------------------
    def _apply(self, policy: Policy, action: str, history: History) -> ApplyResult:
        try:
            plan = self._plan(policy, action)
        except ApplyRefused:
            raise
        except (Exception, KeyboardInterrupt) as exc:  # nothing has changed yet: say so
            raise ApplyRefused(f"{failure_detail(exc)} (nothing was changed)") from None
        if plan is None:
            return ApplyResult(None, [], unchanged=True, policy=policy)
        guard = SignalGuard()
        with guard.installed():
            try:
                rec = self._steps(plan, history, guard)
            except BaseException as exc:  # noqa: BLE001 - every failure restores, then raises
                guard.armed = False
                raise self._failed(plan, history, exc, guard) from None
        if guard.held:
            self.log(f"{', '.join(guard.held)} arrived while the apply finished: it is complete")
        return ApplyResult(rec, plan.changes, plan.restart, policy=policy)

    def _plan(self, policy: Policy, action: str) -> _Plan | None:
        """Read the cluster and render the new fragment; None when there is nothing to do."""
        before = read_policy(self.runner, self.fragment)
        old_bytes = self.fragment.read_bytes()
        old_mode = self.fragment.stat().st_mode & 0o777
        accounting = before.state.accounting
        changes = self._changes(before, policy, accounting)
        nodes = self.nodes or fragment_nodes(old_bytes.decode()) or self._cluster_nodes(before)
        new_text = render_fragment(policy, nodes=nodes, accounting=accounting,
                                   machine=before.state.nodes)
        for t in policy.tiers:
            if t.nodes is not None:
                self.log(f"tier {t.name}: {t.nodes.describe()} -> "
                         f"Nodes={tier_nodes(t, nodes, before.state.nodes)}")
        if not changes and new_text.encode() == old_bytes:
            return None
        restart = [c for c in changes if c.needs_restart]
        undo = _Undo(old_bytes, old_mode, before.state)
        return _Plan(policy, action, before, changes, restart, new_text, undo)

    def _steps(self, plan: _Plan, history: History, guard: SignalGuard) -> Record:
        undo, accounting = plan.undo, plan.before.state.accounting
        undo.step = "sacctmgr"
        if accounting:
            self._qos(plan.policy, undo)
        undo.step = "write fragment"
        write_atomic(self.fragment, plan.new_text.encode(), mode=undo.old_mode)
        self.log(f"wrote {self.fragment}")
        undo.step = "scontrol reconfigure"
        self._reconfigure(tolerate_restart=bool(plan.restart))
        undo.step = "verify"
        self._verify(plan.policy, accounting, plan.restart)
        undo.step = "history"
        status = "restart-pending" if plan.restart else "applied"
        msg = ""
        if plan.restart:
            msg = "waiting for a slurmctld restart: " + "; ".join(
                f"{c} [{c.needs_restart}]" for c in plan.restart
            )
        rec = self._record(history, plan, status, msg)
        guard.armed = False  # the record is the last step: a signal now waits for it
        history.add(rec)
        return rec

    def _failed(self, plan: _Plan, history: History, exc: BaseException,
                guard: SignalGuard) -> ApplyFailed:
        """Restore the state before the apply and record the failure (signals wait)."""
        undo = plan.undo
        restored, notes = self._restore(undo)
        detail = failure_detail(exc)
        if guard.held:
            detail += f" ({', '.join(guard.held)} arrived during the restore and waited for it)"
        err = ApplyFailed(undo.step, detail, restored, notes)
        try:
            history.add(self._record(history, plan, "failed", str(err)))
        except Exception as hexc:  # noqa: BLE001 - the failure itself must still be reported
            detail += f"; the failure could not be recorded in {history.dir}: {hexc}"
            err = ApplyFailed(undo.step, detail, restored, notes)
        return err

    def _changes(self, before: LivePolicy, policy: Policy, accounting: bool) -> list[Change]:
        if before.policy is None:
            return [Change("<live>", "not a valid policy", "replaced by " + policy.name)]
        return diff_policies(before.policy, policy, accounting=accounting)

    def _cluster_nodes(self, before: LivePolicy) -> str:
        """Every node of the cluster, as one host list (the partitions' lists may differ)."""
        names = [n.name for n in before.state.nodes]
        if not names:
            raise ApplyRefused("scontrol show nodes lists no nodes: give --nodes NODELIST")
        return self.runner.check(scontrol.hostlist_argv(names)).strip()

    def _qos(self, policy: Policy, undo: _Undo) -> None:
        for name, settings in qos_settings(policy):
            if name not in undo.before.qos:
                argv = sacctmgr.add_qos_argv(name)
                undo.created.append(name)  # before it runs: an interrupted add is undone too
                res = self.runner(argv)
                if sacctmgr.is_no_change(res.output):
                    undo.created.remove(name)  # made by someone else since: not ours to delete
                elif res.returncode != 0:
                    raise _StepError(f"`{' '.join(argv)}` failed: {res.output or res.returncode}")
                self.log(" ".join(argv))
            argv = sacctmgr.modify_qos_argv(name, settings)
            if name not in undo.touched:
                undo.touched.append(name)
            res = self.runner(argv)
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

    def _restore(self, undo: _Undo) -> tuple[bool, list[str]]:
        """Put back the fragment, the controller's configuration and the QOS; each part is
        tried even when another fails, and every failure is a note."""
        notes: list[str] = []
        try:
            if self.fragment.read_bytes() != undo.old_bytes:
                write_atomic(self.fragment, undo.old_bytes, mode=undo.old_mode)
        except OSError as exc:
            notes.append(f"could not write back {self.fragment}: {exc}")
        self._undo_step(notes, "scontrol reconfigure (restore)", scontrol.reconfigure_argv(),
                        ok=lambda out: _RESTART_MSG in out)
        now = self._read_back(notes)
        for name in undo.touched:
            row = undo.before.qos.get(name)
            if row is not None:
                self._undo_step(notes, f"restore QOS {name}",
                                sacctmgr.modify_qos_argv(name, row.settings()),
                                ok=sacctmgr.is_no_change)
        for name in undo.created:
            if now is None or name in now.qos:
                self._undo_step(notes, f"delete QOS {name} created by this apply",
                                sacctmgr.delete_qos_argv(name))
        if not notes:
            final = self._read_back(notes)
            if final is not None and final.fingerprint() != undo.before.fingerprint():
                notes.append("the live state read back differs from the state before the apply")
        return not notes, notes

    def _undo_step(self, notes: list[str], what: str, argv: list[str],
                   ok: Callable[[str], bool] = lambda _out: False) -> None:
        try:
            res = self.runner(argv)
        except Exception as exc:  # noqa: BLE001 - note it, go on with the rest of the restore
            notes.append(f"{what} failed: {exc}")
            return
        if res.returncode != 0 and not ok(res.output):
            notes.append(f"{what} failed: {res.output or f'exit {res.returncode}'}")

    def _read_back(self, notes: list[str]) -> LiveState | None:
        """The live state, waiting a little for a controller busy after reconfigure."""
        def attempt() -> LiveState | None:
            try:
                return read_live(self.runner)
            except SlurmCommandError:
                return None

        try:
            return wait_until("the live state to read back", attempt, _RESTORE_READ_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a timeout or anything: report, do not mask the original failure
            notes.append(f"could not read the state back: {exc}")
        return None

    def _record(self, history: History, plan: _Plan, status: str, message: str) -> Record:
        return Record(
            id=history.next_id(),
            when=datetime.now().astimezone().isoformat(timespec="seconds"),
            who=self.who or os.environ.get("SUDO_USER") or getpass.getuser(),
            action=plan.action,
            status=status,
            changes=[str(c) for c in plan.changes],
            policy=policy_to_mapping(plan.policy),
            message=message,
            fragment=str(self.fragment),
            restart_pending=[str(c) for c in plan.restart] if status != "failed" else [],
            simulation=self.simulation,
        )


class _StepError(RuntimeError):
    pass
