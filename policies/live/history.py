"""The record of applied policies: one JSON file per apply in ``policy-history/`` next to
the fragment (who, when, what changed, the full policy, the outcome), serialised by a lock
file so two admins cannot apply at once."""

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

    @property
    def in_force(self) -> bool:
        return self.status in ("applied", "restart-pending")


class History:
    def __init__(self, fragment: Path) -> None:
        self.dir = fragment.parent / HISTORY_DIR

    def records(self) -> list[Record]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.glob("[0-9]*.json")):
            try:
                out.append(Record(**json.loads(p.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(out, key=lambda r: r.id)

    def get(self, rid: int) -> Record | None:
        return next((r for r in self.records() if r.id == rid), None)

    def next_id(self) -> int:
        recs = self.records()
        return recs[-1].id + 1 if recs else 1

    def add(self, rec: Record) -> Path:
        self.dir.mkdir(mode=0o755, exist_ok=True)
        path = self.dir / f"{rec.id:06d}.json"
        write_atomic(path, json.dumps(asdict(rec), indent=1).encode())
        return path

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for one apply (fails at once if another apply holds it)."""
        self.dir.mkdir(mode=0o755, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(
                    f"another `sandfill policy apply` holds {self.dir / '.lock'}"
                ) from None
            yield
        finally:
            os.close(fd)
