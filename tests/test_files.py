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
