"""The benchmarks in tests/bench (they run on demand and use ``sandfill.dev.testing``): each
takes its arguments with argparse and prints its usage on ``--help`` without booting
anything, and the busy-cluster driver names a contender that fails, says why, and stops the
others by PID."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
BENCHES = sorted(BENCH.glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert {b.name for b in BENCHES} >= {"bench_dask.py", "bench_foundation.py", "bench_hub.py", "bench_simulator.py"}


@pytest.mark.parametrize("bench", BENCHES, ids=lambda p: p.name)
def test_help_prints_the_usage(bench: Path, tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(bench), "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage:"), res.stdout
    assert list(tmp_path.iterdir()) == []  # nothing booted, nothing written


def test_simulator_bench_refuses_a_bad_argument() -> None:
    res = subprocess.run(
        [sys.executable, str(BENCH / "bench_simulator.py"), "--naive-jobs", "lots"], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 2 and "--naive-jobs: must be a whole number, got 'lots'" in res.stderr


def _bench_dask(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_dask", BENCH / "bench_dask.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_dask", mod)  # its dataclasses look themselves up
    spec.loader.exec_module(mod)
    return mod


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_failing_contender_is_named_and_the_others_are_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench_dask(monkeypatch)
    scripts = {
        "sandfill": "import time; time.sleep(600)",
        "plain-1h@burst": "import sys; sys.exit('mariadb-install-db failed (exit 1): Unknown table')",
        "plain-1h@batch": "import time; time.sleep(600)",
    }
    started: list[subprocess.Popen[bytes]] = []

    def fake_start(name: str, args: argparse.Namespace) -> object:
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        proc = subprocess.Popen([sys.executable, "-c", scripts[name]], stdout=out, stderr=err)
        started.append(proc)
        return bench.Contender(name, proc, out, err)

    monkeypatch.setattr(bench, "start", fake_start)
    try:
        with pytest.raises(RuntimeError) as info:
            bench.run_all(argparse.Namespace(window=60.0, workers=8))
        message = str(info.value)
        assert "contender plain-1h@burst failed (exit status 1)" in message
        assert "Unknown table" in message
        assert len(started) == 3 and not any(_alive(p.pid) for p in started)
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait(10)
