"""Layout and packaging: import roots, the CLI's parts, environment.yml ⇄ pyproject.toml."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _spec(req: str) -> str:
    req = re.sub(r"\[.*?\]", "", req)
    return req[len(_name(req)) :].replace(" ", "").replace("==", "=")


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): _spec(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d): _spec(d) for d in env["dependencies"] if isinstance(d, str)}
    missing = sorted(set(wanted) - set(conda))
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    differ = {k: (wanted[k], conda[k]) for k in wanted if conda[k] != wanted[k]}
    assert not differ, f"version constraints differ (pyproject, environment.yml): {differ}"
    assert any(isinstance(d, dict) and "-e ." in d.get("pip", []) for d in env["dependencies"])


@pytest.mark.parametrize("mod", ["sandfill", "sandfill.slurm", "sandfill.dev.devcluster", "sandfill.policies", "sandfill.hub", "sandfill.dask", "sandfill.lab"])
def test_import_roots(mod: str) -> None:
    m = importlib.import_module(mod)
    assert m.__name__ == mod


@pytest.mark.parametrize("folder", ["policies", "hub_config", "extensions"])
def test_folder_names_are_not_import_roots(folder: str, tmp_path: Path) -> None:
    # a clean interpreter outside the checkout: what an installed sandfill exposes
    res = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr


def test_no_code_imports_a_folder_name() -> None:
    bad = re.compile(r"^\s*(from|import)\s+(policies|hub_config|extensions)\b", re.M)
    offenders = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if ".venv" not in p.parts and "node_modules" not in p.parts and bad.search(p.read_text(errors="replace"))
    ]
    assert not offenders


def test_cli_lists_each_parts_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    from sandfill.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "devcluster" in out


def test_top_level_layout() -> None:
    for p in ["hub_config", "extensions", "policies", "notebooks", "tests", "environment.yml", "README.md", "pyproject.toml", "Makefile", ".ci/run"]:
        assert (ROOT / p).exists(), p


def test_wheel_ships_prebuilt_labextension_and_enables_server_extension(tmp_path: Path) -> None:
    """Whoever installs the wheel needs no node: the built front end and the server
    extension's enable file are inside it (run after `make labextension`)."""
    assert (ROOT / "extensions/lab/labextension/package.json").exists(), "run `make labextension` first"
    # build from a copy, so that nothing left in the checkout's build/ can slip into the wheel
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__"))
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    import zipfile

    (wheel,) = tmp_path.glob("sandfill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    prefix = "sandfill-0.1.0.data/data/"
    assert prefix + "etc/jupyter/jupyter_server_config.d/sandfill-lab.json" in names
    assert prefix + "share/jupyter/labextensions/sandfill-labextension/package.json" in names
    assert any(n.startswith(prefix + "share/jupyter/labextensions/sandfill-labextension/static/remoteEntry.") for n in names)
    assert "sandfill/lab/handlers.py" in names and "sandfill/dask/sandfill.yaml" in names
    assert "sandfill/units.py" in names and "sandfill/policies/sim/simulator.py" in names
    assert not [n for n in names if n.startswith("sandfill/hub/jupyter/")], "the old hand-written walltime module is gone"


# Floors below which a dependency has a known vulnerability in what sandfill uses of it.
SECURITY_FLOORS = {
    "jupyter-server-proxy": ((4, 2), "CVE-2024-28179 (4.1.1), CVE-2024-35225 (4.2.0)"),
}


@pytest.mark.parametrize("name", sorted(SECURITY_FLOORS))
def test_dependency_floors_exclude_vulnerable_versions(name: str) -> None:
    from importlib.metadata import version

    floor, cves = SECURITY_FLOORS[name]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (req,) = [r for r in project["dependencies"] if _name(r) == name]
    got = re.search(r">=\s*([0-9.]+)", req)
    assert got, f"{name} has no lower bound: {req}"
    assert tuple(int(x) for x in got.group(1).split(".")[:2]) >= floor, f"{req} admits {cves}"
    installed = tuple(int(x) for x in version(name).split(".")[:2])
    assert installed >= floor, f"installed {name} {version(name)} has {cves}"


# Absolute paths of one machine's folders (a checkout's parent, a home directory) never
# appear in the tree: tests and tools find what they need inside the repository.
MACHINE_PATHS = re.compile(r"(?:^|[\s\"'(=])(?:/work|/check|/root)/|\.\./shared\b|parents\[3\]")


def test_no_absolute_machine_paths_in_the_tree() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    hits = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".gz", ".png", ".lock"} or name.endswith("package-lock.json"):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        hits += [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
                 if MACHINE_PATHS.search(line) and name != "tests/test_packaging.py"]
    assert not hits, "\n".join(hits)
