"""The layer rules of docs/architecture.md, checked by an AST walk over every module.

Every import counts, lazy ones inside functions included; only imports under
``if TYPE_CHECKING:`` are left out (they never run). The checker is a pure function of the
sources, so the tests also show that it fails when a forbidden import is added.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CORE = ("sandfill", "sandfill.units", "sandfill.schema", "sandfill.cli", "sandfill.slurm")
# layer -> the layers it may import (besides itself and core)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "hub": set(),
    "dask": set(),
    "policies": set(),
    "lab": {"dask"},
    "dev": {"hub", "dask", "lab", "policies"},
}
# inside sandfill.policies: room -> rooms it may import
POLICY_ROOMS: dict[str, set[str]] = {
    "document": set(),
    "live": {"document"},
    "sim": {"document"},
    "replay": {"document", "live", "sim"},
    "gate": {"document", "sim"},  # the simulation before apply, on the site's own sacct history
    "health": {"document", "sim", "gate"},  # live waits from accounting, next to the simulation
    "lab": {"document", "sim"},  # the policy lab (sweep, recommend); only cli imports it
    "cli": {"document", "live", "sim", "replay", "lab", "gate", "health"},
    "": {"document"},  # sandfill.policies itself re-exports the document
}


def module_files() -> dict[str, Path]:
    """Module name -> file, following pyproject's package-dir mapping."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    out: dict[str, Path] = {}
    for pkg in tool["packages"]:
        folder = _folder(pkg, tool["package-dir"])
        for f in sorted(folder.glob("*.py")):
            out[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return out


def _folder(pkg: str, mapping: dict[str, str]) -> Path:
    best = max((k for k in mapping if pkg == k or pkg.startswith(k + ".")), key=len)
    rest = pkg[len(best) :].lstrip(".")
    return ROOT / mapping[best] / rest.replace(".", "/")


def layer(mod: str) -> str:
    if mod in CORE or mod.startswith("sandfill.slurm."):
        return "core"
    part = mod.split(".")[1]
    return part if part in ALLOWED else "core"


def room(mod: str) -> str:
    parts = mod.split(".")
    return parts[2] if len(parts) > 2 else ""


def imports(source: str, mod: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(imported sandfill module, line) for every import that can run."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, mod, is_package)
            for a in node.names:
                yield f"{base}.{a.name}", node.lineno  # a submodule, or a name in base
            yield base, node.lineno


def _absolute(node: ast.ImportFrom, mod: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = mod.split(".")
    parts = parts[: len(parts) - node.level + (1 if is_package else 0)]
    return ".".join(parts + ([node.module] if node.module else []))


def resolve(name: str, known: set[str]) -> str | None:
    """The known module an import refers to (``a.b.name`` -> ``a.b``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph(sources: dict[str, str], packages: set[str]) -> dict[str, dict[str, int]]:
    known = set(sources)
    out: dict[str, dict[str, int]] = {}
    for mod, src in sources.items():
        edges: dict[str, int] = {}
        for name, line in imports(src, mod, mod in packages):
            target = resolve(name, known)
            if target and target != mod and not mod.startswith(target + "."):
                edges.setdefault(target, line)
        out[mod] = edges
    return out


def violations(sources: dict[str, str], packages: set[str]) -> list[str]:
    """Every import that breaks a layer rule, as ``mod:line imports target (rule)``."""
    bad = []
    for mod, edges in graph(sources, packages).items():
        src_layer = layer(mod)
        for target, line in edges.items():
            dst_layer = layer(target)
            if dst_layer == "dev" and src_layer != "dev":
                bad.append(f"{mod}:{line} imports {target} (nothing in the product imports sandfill.dev)")
            elif dst_layer not in {src_layer, "core"} and dst_layer not in ALLOWED[src_layer]:
                bad.append(f"{mod}:{line} imports {target} ({src_layer} may not import {dst_layer})")
            elif src_layer == dst_layer == "policies" and room(target) != room(mod):
                if room(target) not in POLICY_ROOMS[room(mod)]:
                    bad.append(f"{mod}:{line} imports {target} (policies.{room(mod)} may not import policies.{room(target)})")
    return bad


def cycles(sources: dict[str, str], packages: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    g = graph(sources, packages)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def tree() -> tuple[dict[str, str], set[str]]:
    files = module_files()
    packages = {m for m, f in files.items() if f.name == "__init__.py"}
    return {m: f.read_text() for m, f in files.items()}, packages


def test_the_tree_keeps_the_layer_rules(tree: tuple[dict[str, str], set[str]]) -> None:
    sources, packages = tree
    assert len(sources) > 60, "the walk found the modules"
    assert violations(sources, packages) == []


def test_the_tree_has_no_import_cycles(tree: tuple[dict[str, str], set[str]]) -> None:
    assert cycles(*tree) == []


@pytest.mark.parametrize(
    ("mod", "line", "rule"),
    [
        ("sandfill.hub.spawner", "from sandfill.dev.testing import sleep_script", "nothing in the product imports sandfill.dev"),
        ("sandfill.slurm.client", "import sandfill.policies.document.model", "core may not import policies"),
        ("sandfill.dask.cluster", "from sandfill.policies.document.load import load_policy", "dask may not import policies"),
        ("sandfill.policies.sim.simulator", "from sandfill.policies.live import apply", "policies.sim may not import policies.live"),
        ("sandfill.policies.sim.report", "from sandfill.policies.lab import spec", "policies.sim may not import policies.lab"),
        ("sandfill.policies.lab.run", "from sandfill.policies.live import apply", "policies.lab may not import policies.live"),
        ("sandfill.policies.lab.run", "    import sandfill.dask.cluster", "policies may not import dask"),
        ("sandfill.units", "    from sandfill.hub import traits", "core may not import hub"),
    ],
)
def test_a_forbidden_import_is_caught(tree: tuple[dict[str, str], set[str]], mod: str, line: str, rule: str) -> None:
    sources, packages = tree
    body = f"def lazy():\n{line}\n" if line.startswith(" ") else f"{line}\n"
    changed = dict(sources, **{mod: sources[mod] + "\n" + body})
    found = violations(changed, packages)
    assert any(v.startswith(f"{mod}:") and rule in v for v in found), found


def test_a_cycle_is_caught(tree: tuple[dict[str, str], set[str]]) -> None:
    sources, packages = tree
    changed = dict(sources)
    changed["sandfill.units"] += "\ndef f():\n    from sandfill import schema\n"
    assert ["sandfill.schema", "sandfill.units"] in cycles(changed, packages)


def test_type_checking_imports_do_not_count(tree: tuple[dict[str, str], set[str]]) -> None:
    sources, packages = tree
    extra = "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sandfill.dev import testing\n"
    changed = dict(sources, **{"sandfill.hub.form": sources["sandfill.hub.form"] + extra})
    assert violations(changed, packages) == violations(sources, packages)


SLURM_COMMANDS = {"squeue", "sinfo", "sacct", "sacctmgr", "scontrol", "sbatch", "scancel", "sdiag", "srun", "salloc", "sprio", "sshare"}


def slurm_argv_strings(source: str) -> list[int]:
    """Lines where a Slurm command name stands in an argv: an element of a list or tuple
    (``[*prefix, "sbatch", …]`` too), or the first argument of a call
    (``create_subprocess_exec("squeue", …)``). A label such as ``step = "sacctmgr"`` or
    prose is not an argv."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        items: list[ast.expr] = []
        if isinstance(node, ast.List | ast.Tuple):
            items = list(node.elts)
        elif isinstance(node, ast.Call) and node.args:
            items = [node.args[0]]
        lines += [i.lineno for i in items if isinstance(i, ast.Constant) and i.value in SLURM_COMMANDS]
    return sorted(lines)


def test_only_the_slurm_layer_builds_slurm_argv(tree: tuple[dict[str, str], set[str]]) -> None:
    sources, _ = tree
    product = {m: s for m, s in sources.items() if not m.startswith(("sandfill.slurm", "sandfill.dev"))}
    offenders = {m: lines for m, s in product.items() if (lines := slurm_argv_strings(s))}
    assert offenders == {}


def test_the_argv_check_sees_a_slurm_command() -> None:
    assert slurm_argv_strings('run(["squeue", "-h"])\nx = "squeue is a command"\nstep = "sacctmgr"\n') == [1]
    assert slurm_argv_strings('exec_("sbatch", "--parsable")\nargv = ("scancel", job)\n[*prefix, "sinfo"]\n') == [1, 2, 3]


MAX_CLASS_LINES = 349
MAX_FUNCTION_LINES = 60
EXEMPT = "# long:"  # a comment right above the definition that says why it must be longer


def oversized(source: str) -> list[str]:
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        size = (node.end_lineno or node.lineno) - node.lineno + 1
        limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
        if size > limit and not lines[first - 2].strip().startswith(EXEMPT):
            out.append(f"{node.name} (line {node.lineno}): {size} lines")
    return out


def test_no_class_or_function_is_too_long(tree: tuple[dict[str, str], set[str]]) -> None:
    sources, _ = tree
    offenders = {m: found for m, s in sources.items() if (found := oversized(s))}
    assert offenders == {}


def test_the_size_check_sees_a_long_function_unless_it_says_why() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert oversized(f"def f():\n{body}") == [f"f (line 1): {MAX_FUNCTION_LINES + 1} lines"]
    assert oversized(f"x = 1\n{EXEMPT} one table, read top to bottom\ndef f():\n{body}") == []


# test modules that test a whole part rather than one module, named by what they test
WHOLE_PARTS = {
    "tests/test_architecture.py": "the layer rules of docs/architecture.md",
    "tests/test_packaging.py": "the wheel, the entry points and environment.yml",
    "tests/lab/test_labextension.py": "the TypeScript lab extension, in a browser",
    "tests/policies/test_notebooks.py": "notebooks/policy-*.ipynb",
    "tests/dask/test_notebook.py": "notebooks/backfill-dask.ipynb",
    "tests/lab/test_panel_browser.py": "the TypeScript Backfill Dask panel, in a browser",
    "tests/hub/test_hung_controller_live.py": "a hung slurmctld under the hub, its servers and a Dask cluster",
}


def test_each_test_module_sits_beside_the_module_it_tests(tree: tuple[dict[str, str], set[str]]) -> None:
    """``tests/X/test_Y.py`` (or ``test_Y_<what>.py``) tests ``sandfill.X.Y``."""
    modules = set(tree[0])
    stray = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("tests/bench/") or rel in WHOLE_PARTS:
            continue
        package = ".".join(["sandfill", *path.parent.relative_to(ROOT / "tests").parts])
        name = path.stem.removeprefix("test_").split("_")
        candidates = {f"{package}.{'_'.join(name[:i])}".rstrip(".") for i in range(1, len(name) + 1)}
        if not candidates & modules:
            stray.append(rel)
    assert stray == []
