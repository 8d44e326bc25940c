"""Reading a job's log from the root hub: a symlink, a FIFO, another owner's file or a huge
sparse file gives a clear refusal or the capped tail at once, and never blocks the loop."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from loop_probe import run_beside_a_ticker

from sandfill.hub.joblog import MAX_TAIL_BYTES, LogRefused, off_loop, read_log_tail, tail_log

ME = "root"  # the tests run as root: the owner of the files they make


def test_a_symlink_to_shadow_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "job.log"
    link.symlink_to("/etc/shadow")
    with pytest.raises(LogRefused, match="job.log is a symbolic link"):
        read_log_tail(str(link), ME)
    tail = asyncio.run(tail_log(str(link), ME))
    assert tail.text is None and "symbolic link" in (tail.error or "")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "job.log"
    os.mkfifo(fifo)
    tail = asyncio.run(tail_log(str(fifo), ME, timeout=5))
    assert tail.text is None and "not a regular file" in (tail.error or "")


def test_another_owners_file_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("root's secrets\n")
    with pytest.raises(LogRefused, match="not owned by nobody"):
        read_log_tail(str(log), "nobody")


def test_a_10_gb_sparse_file_gives_only_the_capped_tail_quickly(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    with open(log, "wb") as f:
        f.truncate(10 * 1024**3)
        f.seek(0, os.SEEK_END)
        f.write(b"\nsecond last line\nthe last line\n")
    text = read_log_tail(str(log), ME, max_bytes=4096)
    assert text is not None and text.endswith("second last line\nthe last line\n") and len(text) < 4096
    huge = read_log_tail(str(log), ME, max_bytes=10 * 1024**3)  # a setting cannot lift the cap
    assert huge is not None and len(huge.encode()) <= MAX_TAIL_BYTES


def test_a_missing_log_is_none_and_an_unknown_user_refused(tmp_path: Path) -> None:
    assert read_log_tail(str(tmp_path / "none.log"), ME) is None
    tail = asyncio.run(tail_log(str(tmp_path / "none.log"), "no-such-user-sandfill"))
    assert "no account" in (tail.error or "")


def test_a_hung_read_times_out_and_the_loop_goes_on() -> None:
    import threading

    release = threading.Event()

    message, ticks = run_beside_a_ticker(
        lambda: off_loop("reading /hung/job.log", release.wait, 10, timeout=0.2), release)
    assert message == "reading /hung/job.log took longer than 0.2 s" and ticks >= 5
