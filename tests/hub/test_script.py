"""The batch script's own safety lines (the rendering itself is tested in test_form.py)."""

from __future__ import annotations

import pytest

from sandfill.hub.script import DEFAULT_TEMPLATE, ScriptContext, ScriptError, render_script


def test_the_script_makes_every_file_of_the_job_private() -> None:
    lines = DEFAULT_TEMPLATE.splitlines()
    assert "umask 077" in lines
    assert lines.index("umask 077") < next(i for i, line in enumerate(lines) if line.startswith("exec "))


def _ctx(**kw: object) -> ScriptContext:
    args: dict[str, object] = dict(
        job_name="jupyterhub-alice", partition="interactive", cpus=1, memory_mb=1024, walltime="01:00:00", account=None,
        output="/home/alice/x-%j.log", home="/home/alice", export_vars="JUPYTERHUB_API_TOKEN", path="/opt/venv/bin:/usr/bin:/bin",
        command=("/opt/venv/bin/jupyterhub-singleuser",),
    )
    args.update(kw)
    return ScriptContext(**args)  # type: ignore[arg-type]


def test_the_sites_prologue_runs_before_the_server_with_set_u_paused() -> None:
    lines = render_script(DEFAULT_TEMPLATE, _ctx(prologue="module load python\nconda activate base")).splitlines()
    at = [lines.index(x) for x in ("set -euo pipefail", "umask 077", "set +u", "module load python", "conda activate base", "set -u")]
    assert at == sorted(at) and at[-1] < next(i for i, ln in enumerate(lines) if ln.startswith("exec "))
    plain = render_script(DEFAULT_TEMPLATE, _ctx()).splitlines()
    assert "set +u" not in plain and "set -u" not in plain  # no prologue: nothing added


def test_site_directives_may_use_constraint_and_license_syntax_but_stay_one_line() -> None:
    script = render_script(DEFAULT_TEMPLATE, _ctx(extra_directives=("#SBATCH --constraint=a100&ib|v100", "#SBATCH --licenses=matlab@lic:1")))
    assert "#SBATCH --constraint=a100&ib|v100" in script.splitlines() and "#SBATCH --licenses=matlab@lic:1" in script.splitlines()
    for bad in ("#SBATCH --qos=x y", "#SBATCH --qos=$(id)", "#SBATCH --qos=x;id", "--qos=x", "#SBATCH --qos=a\n#SBATCH --uid=0"):
        with pytest.raises(ScriptError):
            _ctx(extra_directives=(bad,))
    with pytest.raises(ScriptError):
        _ctx(prologue="module load x\0")
    with pytest.raises(ScriptError):
        _ctx(gres="gpu:1\n#SBATCH --uid=0")
