"""``sdiag``: the controller's RPC counters (the honest measure of scheduler load)."""

from __future__ import annotations

import re

_SDIAG_RPC = re.compile(r"^\s*(?P<name>[A-Z_]+)\s+\(\s*\d+\)\s+count:(?P<count>\d+)")


def rpcs_argv() -> list[str]:
    """``sdiag``: the controller's statistics, RPC counters included."""
    return ["sdiag"]


def parse_sdiag_rpcs(text: str) -> dict[str, int]:
    """RPC counts by message type from ``sdiag`` output."""
    counts: dict[str, int] = {}
    section = False
    for line in text.splitlines():
        if line.startswith("Remote Procedure Call statistics by message type"):
            section = True
            continue
        if line.startswith("Remote Procedure Call statistics by user"):
            break
        if section:
            m = _SDIAG_RPC.match(line)
            if m:
                counts[m.group("name")] = int(m.group("count"))
    return counts


_SDIAG_USER = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.-]+)\s+\(\s*\d+\)\s+count:(?P<count>\d+)")


def parse_sdiag_users(text: str) -> dict[str, int]:
    """RPC counts by the user who sent them (``sdiag``'s "by user" section): what one
    account's processes cost the controller."""
    counts: dict[str, int] = {}
    section = False
    for line in text.splitlines():
        if line.startswith("Remote Procedure Call statistics by user"):
            section = True
            continue
        if section and line and not line[0].isspace():
            break
        m = _SDIAG_USER.match(line) if section else None
        if m:
            counts[m.group("name")] = int(m.group("count"))
    return counts
