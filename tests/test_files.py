"""sandfill.files: private files never follow a planted symlink and are owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sandfill.files import UnsafePath, private_dir, write_private


def test_write_private_is_owner_only_even_with_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        p = write_private(tmp_path / "secret", "s3cret")
    finally:
        os.umask(old)
    assert p.read_text() == "s3cret"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_write_private_replaces_a_planted_symlink_without_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    link = tmp_path / "secret"
    link.symlink_to(victim)
    write_private(link, "new")
    assert victim.read_text() == "untouched"
    assert not link.is_symlink() and link.read_text() == "new"
    assert [q.name for q in tmp_path.iterdir() if q.name.endswith(".tmp")] == []


def test_private_dir_tightens_an_existing_loose_directory(tmp_path: Path) -> None:
    d = tmp_path / "state"
    d.mkdir(mode=0o777)
    os.chmod(d, 0o777)
    private_dir(d)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_private_dir_refuses_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.chmod(real, 0o755)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UnsafePath, match="link"):
        private_dir(tmp_path / "link")
    assert stat.S_IMODE(real.stat().st_mode) == 0o755


def test_read_tail_refuses_what_is_not_a_regular_file_of_the_owner(tmp_path: Path) -> None:
    from sandfill.files import RefusedFile, read_tail

    (tmp_path / "link").symlink_to("/etc/shadow")
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would never return
    (tmp_path / "log").write_text("mine\n")
    with pytest.raises(RefusedFile, match="link is a symbolic link"):
        read_tail(tmp_path / "link", 100)
    with pytest.raises(RefusedFile, match="fifo is not a regular file"):
        read_tail(tmp_path / "fifo", 100)
    with pytest.raises(RefusedFile, match="log is not owned by nobody"):
        read_tail(tmp_path / "log", 100, uid=os.geteuid() + 1, owner="nobody")
    assert read_tail(tmp_path / "log", 100) == "mine\n"
    assert read_tail(tmp_path / "missing", 100) is None


def test_read_tail_reads_only_the_end_of_a_huge_sparse_file(tmp_path: Path) -> None:
    from sandfill.files import read_tail

    with open(tmp_path / "log", "wb") as f:
        f.truncate(10 * 1024**3)
        f.seek(0, os.SEEK_END)
        f.write(b"\ncut line\nwhole line\n")
    assert read_tail(tmp_path / "log", 15) == "whole line\n"  # the cut first line dropped


def test_read_from_follows_a_growing_file_with_the_same_refusals(tmp_path: Path) -> None:
    from sandfill.files import RefusedFile, read_from

    log = tmp_path / "job.log"
    log.write_bytes(b"one\n")
    data, start, size = read_from(log, -1, 1024) or (b"", -1, -1)
    assert (data, start, size) == (b"one\n", 0, 4)
    with log.open("ab") as f:
        f.write(b"two\n" * 100)
    data, start, size = read_from(log, size, 8) or (b"", -1, -1)
    assert (data, start, size) == (b"two\ntwo\n", 4, 404)  # capped at max_bytes
    log.write_bytes(b"new\n")  # truncated/replaced: the offset is past the end
    assert read_from(log, 404, 1024) == (b"new\n", 0, 4)
    assert read_from(tmp_path / "missing", 0, 10) is None
    (tmp_path / "link").symlink_to(log)
    with pytest.raises(RefusedFile, match="symbolic link"):
        read_from(tmp_path / "link", 0, 10)
