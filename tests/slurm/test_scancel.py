"""``sandfill.slurm.scancel``: the argv it builds."""

from __future__ import annotations

import pytest

from sandfill.slurm.scancel import cancel_argv, cancel_user_argv


def test_cancel_by_ids() -> None:
    assert cancel_argv(["12", "3", "12"]) == ["scancel", "3", "12"]
    assert cancel_argv(["7"], signal="USR1") == ["scancel", "--signal=USR1", "7"]
    with pytest.raises(ValueError, match="not a Slurm job id"):
        cancel_argv(["-u"])


def test_cancel_by_user() -> None:
    assert cancel_user_argv("sftest-ada") == ["scancel", "-u", "sftest-ada"]
    for bad in ("ada,bob", "--all", "Ada", ""):
        with pytest.raises(ValueError, match="not a user name"):
            cancel_user_argv(bad)
