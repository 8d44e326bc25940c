"""``sandfill.dev.devcluster.config``: ports handed out at the same moment to several
processes (devclusters booting in parallel) never collide, and the claims live in a private
directory of ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandfill.dev.devcluster import config
from sandfill.files import UnsafePath

PICK = "import json, sys; from sandfill.dev.devcluster.config import free_ports; print(json.dumps(free_ports(int(sys.argv[1]))))"


def test_parallel_processes_get_disjoint_ports(tmp_path: Path) -> None:
    env = {**os.environ, "SANDFILL_PORT_CLAIMS_DIR": str(tmp_path / "claims")}
    procs = [
        subprocess.Popen([sys.executable, "-c", PICK, "150"], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(4)
    ]
    picks = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    every = [port for pick in picks for port in pick]
    assert len(every) == 600 and len(set(every)) == 600, "two processes got the same port"
    assert (tmp_path / "claims").stat().st_mode & 0o777 == 0o700


def test_a_claimed_port_is_not_handed_out_again_until_it_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDFILL_PORT_CLAIMS_DIR", str(tmp_path / "claims"))
    first = config.free_ports(3)
    claims = json.loads((tmp_path / "claims" / "claims.json").read_text())
    assert sorted(int(p) for p in claims) == sorted(first)
    assert not set(config.free_ports(50)) & set(first)
    (tmp_path / "claims" / "claims.json").write_text(json.dumps({str(p): 0.0 for p in first}))  # expired
    again = config.free_ports(1)
    assert list(json.loads((tmp_path / "claims" / "claims.json").read_text())) == [str(again[0])]


def test_a_symlinked_claims_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "claims").symlink_to(tmp_path / "real")
    monkeypatch.setenv("SANDFILL_PORT_CLAIMS_DIR", str(tmp_path / "claims"))
    with pytest.raises(UnsafePath, match="claims"):
        config.free_ports(1)
    assert list((tmp_path / "real").iterdir()) == []
