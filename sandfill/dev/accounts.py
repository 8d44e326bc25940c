"""Local accounts for the demo and the tests (root only): created with a marker in their
GECOS field, and only accounts carrying that marker are ever removed."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import subprocess
from collections.abc import Iterable

MARKER = "sandfill demo account"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class AccountError(RuntimeError):
    pass


def is_ours(name: str) -> bool:
    try:
        return MARKER in pwd.getpwnam(name).pw_gecos
    except KeyError:
        return False


def create_accounts(names: Iterable[str]) -> dict[str, str]:
    """Create (or take over, if ours) each account with a fresh random password; returns
    name → password. Refuses to touch an existing account that is not ours."""
    if os.geteuid() != 0:
        raise AccountError("creating demo accounts needs root (run `sudo make demo`)")
    out: dict[str, str] = {}
    for name in names:
        if not _NAME.match(name):
            raise AccountError(f"{name!r} is not a valid account name")
        try:
            pwd.getpwnam(name)
            exists = True
        except KeyError:
            exists = False
        if exists and not is_ours(name):
            raise AccountError(f"account {name!r} exists and was not made by sandfill; not touching it")
        if not exists:
            _run(["useradd", "--create-home", "--comment", MARKER, "--shell", "/bin/bash", name])
        password = secrets.token_urlsafe(12)
        _run(["chpasswd"], input=f"{name}:{password}\n")
        out[name] = password
    return out


def remove_accounts(names: Iterable[str]) -> list[str]:
    """Remove those of ``names`` that are ours (with their homes); returns the removed."""
    removed = []
    for name in names:
        if _NAME.match(name) and is_ours(name):
            _run(["userdel", "--remove", name], ok_codes=(0, 12))  # 12: home could not be removed
            removed.append(name)
    return removed


def _run(argv: list[str], input: str | None = None, ok_codes: tuple[int, ...] = (0,)) -> None:
    res = subprocess.run(argv, input=input, capture_output=True, text=True, check=False)
    if res.returncode not in ok_codes:
        raise AccountError(f"{argv[0]} failed: {res.stderr.strip() or res.stdout.strip()}")
