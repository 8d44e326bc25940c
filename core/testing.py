"""Helpers for sandfill's tests (and sites testing their own deployment)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Poll ``check`` until it returns something truthy and return that; on timeout fail
    with an AssertionError naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def sleep_script(seconds: int) -> str:
    """A batch script that sleeps (a "rock" or a stand-in job)."""
    return f"#!/bin/sh\nsleep {int(seconds)}\n"
