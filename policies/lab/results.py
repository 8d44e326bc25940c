"""A sweep's results: one row per variant, its policy file, and the Pareto front.

The table is CSV, or Parquet when the name ends in ``.parquet`` (needs pyarrow). The
variants' policy files go into ``<table stem>-policies/`` next to it, one
``<variant policy>.yaml`` each, in the form ``sandfill policy check``, ``diff`` and
``apply`` read. The Pareto front is taken per load over three objectives: short-job p95
wait (lower is better), long-job mean wait (lower) and utilization (higher).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sandfill.policies.document.load import policy_to_mapping
from sandfill.policies.document.model import Policy
from sandfill.policies.lab.run import Row
from sandfill.policies.lab.spec import Variant

JOURNAL_SUFFIX = ".partial.jsonl"
OBJECTIVES = (("short.p95_wait", -1), ("long.mean_wait", -1), ("utilization", 1))


def policy_yaml(policy: Policy, header: Sequence[str] = ()) -> str:
    """``policy`` as a policy file (comments first)."""
    lines = "".join(f"# {h}\n" for h in header)
    return lines + yaml.safe_dump(policy_to_mapping(policy), sort_keys=False)


def parquet_ok() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def policies_dir(table: str | os.PathLike[str]) -> Path:
    p = Path(table)
    return p.with_name(p.stem + "-policies")


def table_rows(variants: Sequence[Variant], rows: dict[str, Row], table: str | os.PathLike[str]) -> list[Row]:
    """The table's rows in variant order: name, load, knob settings, figures, policy file
    (relative to the table), whether the variant is on its load's Pareto front, and its
    ``error`` if its simulation failed."""
    folder = policies_dir(table)
    out = []
    for v in variants:
        row: Row = {"variant": v.name, "policy": v.policy.name, "load": v.load}
        row.update({k: val for k, val in v.settings})
        row.update(rows[v.name])
        row["policy_file"] = f"{folder.name}/{v.policy.name}.yaml"
        out.append(row)
    front = pareto(out)
    for i, row in enumerate(out):
        row["pareto"] = i in front
    return out


def pareto(rows: Sequence[Row]) -> set[int]:
    """Indices of the rows no other row of the same load dominates (as good in every
    objective, better in one)."""
    keys = [tuple(sign * float(r.get(m) or 0.0) for m, sign in OBJECTIVES) for r in rows]
    ok = [i for i, r in enumerate(rows) if not r.get("error")]  # a failed variant has no figures
    front = set()
    for i in ok:
        if not any(j != i and rows[j]["load"] == rows[i]["load"] and _dominates(keys[j], keys[i])
                   for j in ok):
            front.add(i)
    return front


def _dominates(b: tuple[float, ...], a: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(b, a, strict=True)) and b != a


def write_results(variants: Sequence[Variant], rows: dict[str, Row], table: str | os.PathLike[str]) -> list[Row]:
    """Write the policy files and the table; return the table's rows."""
    out = table_rows(variants, rows, table)
    folder = policies_dir(table)
    folder.mkdir(parents=True, exist_ok=True)
    for v in {v.policy.name: v for v in variants}.values():
        head = [f"sweep variant {v.policy.name}: " + ", ".join(f"{k}={val}" for k, val in v.settings)]
        (folder / f"{v.policy.name}.yaml").write_text(policy_yaml(v.policy, head), encoding="utf-8")
    columns = list(dict.fromkeys(k for r in out for k in r))
    if str(table).endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in out]), table)
    else:
        with open(table, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=columns, restval="")
            w.writeheader()
            w.writerows(_plain(r) for r in out)
    return out


def _plain(row: Row) -> dict[str, Any]:
    return {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}


class Journal:
    """The rows of a sweep as they finish, one JSON line each, next to its table
    (``<table>.partial.jsonl``): an interrupted sweep keeps what it computed, and the same
    command run again computes only the rest. A line counts only for the same variant --
    the same name, policy, load and ``context`` (the machine and workload) -- so a changed
    spec or trace recomputes."""

    def __init__(self, table: str | os.PathLike[str], variants: Sequence[Variant], context: str) -> None:
        self.path = Path(str(table) + JOURNAL_SUFFIX)
        self._keys = {v.name: _variant_key(v, context) for v in variants}

    def load(self) -> dict[str, Row]:
        """The journaled rows of this sweep's variants (an unreadable line is skipped: the
        write it came from was cut short)."""
        rows: dict[str, Row] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return rows
        for line in lines:
            try:
                rec = json.loads(line)
                name, key, row = rec["variant"], rec["key"], rec["row"]
            except (ValueError, KeyError, TypeError):
                continue
            if self._keys.get(name) == key and isinstance(row, dict):
                rows[name] = row
        return rows

    def append(self, name: str, row: Row) -> None:
        """Keep ``row`` (a failed variant's is not kept: the next run tries it again)."""
        if row.get("error"):
            return
        line = json.dumps({"variant": name, "key": self._keys[name], "row": row}, default=float)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _variant_key(v: Variant, context: str) -> str:
    text = "\n".join([policy_yaml(v.policy), repr(v.load), repr(v.settings), context])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
