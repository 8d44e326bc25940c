"""The record of applied policies: one JSON file per apply in ``policy-history/`` next to
the fragment (who, when, what changed, the full policy, the outcome), serialised by a lock
file so two admins cannot apply at once (the second is refused at once, nothing changed)."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandfill.policies.live.fragment import write_atomic

HISTORY_DIR = "policy-history"


@dataclass
class Record:
    id: int
    when: str  # ISO 8601, local time with offset
    who: str
    action: str  # "apply FILE" | "rollback to N"
    status: str  # "applied" | "restart-pending" | "failed" | "unchanged"
    changes: list[str]
    policy: dict[str, Any]
    message: str = ""
    fragment: str = ""
    restart_pending: list[str] = field(default_factory=list)
    # the simulation gate: "simulated on N job(s) of the last D day(s)", "not simulated
    # (--no-simulate)", "no job ran in the last D day(s)"; "" for a rollback or an old record
    simulation: str = ""

    @property
    def in_force(self) -> bool:
        return self.status in ("applied", "restart-pending")


class HistoryLocked(RuntimeError):
    """Another apply or rollback holds the history's lock."""


def _rid(path: Path) -> int | None:
    """The record id a history file name carries (``000012.json`` → 12)."""
    return int(path.stem) if path.stem.isdigit() else None


class History:
    """``records()`` reads every record file; one that cannot be read as a record is not
    skipped in silence: ``warnings`` names each (and ``next_id`` never reuses its id)."""

    def __init__(self, fragment: Path) -> None:
        self.dir = fragment.parent / HISTORY_DIR
        self.warnings: list[str] = []

    def _files(self) -> list[Path]:
        return sorted(self.dir.glob("[0-9]*.json")) if self.dir.is_dir() else []

    def records(self) -> list[Record]:
        out: list[Record] = []
        self.warnings = []
        for p in self._files():
            try:
                rec = Record(**json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as exc:
                self.warnings.append(f"{p} is not a readable history record ({exc}): left out")
                continue
            if rec.id != _rid(p):
                self.warnings.append(f"{p} holds record {rec.id!r}, not {_rid(p)}: left out")
                continue
            out.append(rec)
        return sorted(out, key=lambda r: r.id)

    def next_id(self) -> int:
        """One more than any record file's id, readable or not (a corrupt record is
        evidence: it is never overwritten)."""
        ids = [i for p in self._files() if (i := _rid(p)) is not None]
        return max(ids) + 1 if ids else 1

    def add(self, rec: Record) -> Path:
        self.dir.mkdir(mode=0o755, exist_ok=True)
        path = self.dir / f"{rec.id:06d}.json"
        write_atomic(path, json.dumps(asdict(rec), indent=1).encode())
        return path

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for one apply (:class:`HistoryLocked` at once if another apply
        holds it: the second admin is told, not queued behind a hung apply)."""
        self.dir.mkdir(mode=0o755, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HistoryLocked(
                    f"another `sandfill policy apply` or `rollback` holds {self.dir / '.lock'}"
                ) from None
            yield
        finally:
            os.close(fd)


def in_force(records: list[Record]) -> Record | None:
    """The newest record whose policy was applied (None: none yet)."""
    ok = [r for r in records if r.in_force]
    return ok[-1] if ok else None


def rollback_target(records: list[Record], rid: int | None) -> Record:
    """The record a rollback re-applies: ``rid``, or the newest applied policy that differs
    from the one in force; LookupError says why there is none."""
    if rid is not None:
        target = next((r for r in records if r.id == rid), None)
        if target is None:
            raise LookupError(f"no history record {rid}")
        if not target.in_force:
            raise LookupError(f"record {rid} is a {target.status} apply: nothing to go back to")
        return target
    ok = [r for r in records if r.in_force]
    if len(ok) < 2:
        raise LookupError("no earlier applied policy in the history to roll back to")
    earlier = [r for r in ok[:-1] if r.policy != ok[-1].policy]
    if not earlier:
        raise LookupError("every earlier record applied the policy now in force")
    return earlier[-1]
