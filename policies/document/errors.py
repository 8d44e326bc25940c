"""Errors raised for invalid policy files: every problem at once, each naming its key path."""

from __future__ import annotations

from sandfill.schema import Problem, SchemaError

__all__ = ["PolicyError", "Problem"]


class PolicyError(SchemaError):
    """A policy file (or mapping) is invalid; ``problems`` lists every problem found."""

    kind = "policy"
