"""Errors raised for invalid policy files: every problem at once, each naming its key path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy: where (dotted key path), what value, what is allowed."""

    path: str
    value: object
    message: str

    def __str__(self) -> str:
        where = self.path or "<policy>"
        if self.value is _NO_VALUE:
            return f"{where}: {self.message}"
        return f"{where}: {self.message} (got {self.value!r})"


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE = _NoValue()


class PolicyError(ValueError):
    """A policy file (or mapping) is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid policy{f' {source}' if source else ''}: {len(self.problems)} problem(s)"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))
