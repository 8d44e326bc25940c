"""The notebook server's batch script: a template rendered from an explicit, typed context.

Unlike stock batchspawner (which merges raw ``user_options`` into the template variables
last, so a form field can override anything and a newline injects ``#SBATCH`` lines), the
template sees only the fields of :class:`ScriptContext`. Values that land on ``#SBATCH``
lines are re-checked against a strict character set when the context is built, and shell
values go through ``shlex.quote`` (the ``sh`` filter).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import jinja2

from sandfill.hub.form import ResourceRequest
from sandfill.units import format_duration

DEFAULT_TEMPLATE = """\
#!/bin/bash
#SBATCH --job-name={{ job_name }}
#SBATCH --partition={{ partition }}
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={{ cpus }}
#SBATCH --mem={{ memory_mb }}M
#SBATCH --time={{ walltime }}
#SBATCH --no-requeue
{% if account %}#SBATCH --account={{ account }}
{% endif %}{% if gres %}#SBATCH --gres={{ gres }}
{% endif %}#SBATCH --output={{ output }}
#SBATCH --chdir={{ home }}
#SBATCH --export={{ export_vars }}
{% for line in extra_directives %}{{ line }}
{% endfor %}
set -euo pipefail
umask 077
export PATH={{ path | sh }}
{% for name, value in env.items() %}export {{ name }}={{ value | sh }}
{% endfor %}
{% if prologue %}# the site's prologue (site file: prologue), run as written; set -u paused for it,
# as module and conda scripts expect
set +u
{{ prologue }}
set -u
{% endif %}echo "sandfill: notebook server job $SLURM_JOB_ID on $(hostname) ({{ describe }})"
exec {{ command | join_sh }}
"""

_SBATCH_VALUE = re.compile(r"[A-Za-z0-9_.:/%+-]+")  # full matches
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: sbatch reads these lines itself (bash sees comments): '&', '|' (--constraint) and '@'
#: (--licenses) are plain characters there
_DIRECTIVE = re.compile(r"#SBATCH --[a-z][a-z-]*(=[A-Za-z0-9_.:/%+,=&|@-]+)?")


class ScriptError(ValueError):
    """A value that must not reach a batch script (a bug or a misconfiguration)."""


@dataclass(frozen=True)
class ScriptContext:
    """Everything the template may use, typed."""

    job_name: str
    partition: str
    cpus: int
    memory_mb: int
    walltime: str  # [D-]HH:MM:SS
    account: str | None
    output: str
    home: str
    export_vars: str  # comma-separated variable names
    path: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    extra_directives: tuple[str, ...] = ()
    prologue: str = ""
    describe: str = ""
    gres: str | None = None  # name:count, validated by the form (sandfill.schema.Gres)

    def __post_init__(self) -> None:
        for name in ("job_name", "partition", "walltime", "output", "home"):
            _sbatch(name, getattr(self, name))
        if self.account is not None:
            _sbatch("account", self.account)
        if self.gres is not None:
            _sbatch("gres", self.gres)
        if not (isinstance(self.cpus, int) and isinstance(self.memory_mb, int)) or self.cpus < 1 or self.memory_mb < 1:
            raise ScriptError(f"cpus/memory must be positive integers: {self.cpus!r}, {self.memory_mb!r}")
        for name in self.export_vars.split(","):
            if not _ENV_NAME.fullmatch(name):
                raise ScriptError(f"export_vars: {name!r} is not a variable name")
        for name in self.env:
            if not _ENV_NAME.fullmatch(name):
                raise ScriptError(f"env: {name!r} is not a variable name")
        for line in self.extra_directives:
            if not _DIRECTIVE.fullmatch(line):
                raise ScriptError(f"extra directive {line!r} is not a single '#SBATCH --option[=value]' line")
        if "\0" in self.prologue:
            raise ScriptError("the prologue contains a NUL character")
        for text in (self.path, self.describe, *self.command, *self.env.values()):
            if "\n" in text or "\r" in text or "\0" in text:
                raise ScriptError(f"{text!r} contains a line break")


def _sbatch(name: str, value: str) -> None:
    if not isinstance(value, str) or not _SBATCH_VALUE.fullmatch(value):
        raise ScriptError(f"{name}: {value!r} cannot go on an #SBATCH line")


def build_context(
    request: ResourceRequest,
    *,
    username: str,
    home: str,
    output: str,
    env: Mapping[str, str],
    path: str,
    command: Sequence[str],
    extra_directives: Sequence[str] = (),
    prologue: str = "",
    script_env: Mapping[str, str] | None = None,
) -> ScriptContext:
    """The context for ``request``: ``env`` holds the variables passed through sbatch's
    environment (names only in the script), ``script_env`` those set in the script."""
    return ScriptContext(
        job_name=f"jupyterhub-{username}",
        partition=request.partition,
        cpus=request.cpus,
        memory_mb=request.memory_mb,
        walltime=format_duration(request.walltime_s),
        account=request.account,
        output=output,
        home=home,
        export_vars=",".join(sorted(env)),
        path=path,
        command=tuple(command),
        env=dict(script_env or {}),
        extra_directives=tuple(extra_directives),
        prologue=prologue,
        describe=request.describe(),
        gres=str(request.gres) if request.gres else None,
    )


def _env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["sh"] = lambda v: shlex.quote(str(v))
    env.filters["join_sh"] = lambda v: " ".join(shlex.quote(str(x)) for x in v)
    return env


def render_script(template: str, context: ScriptContext) -> str:
    """Render ``template`` with exactly the fields of ``context``."""
    values = asdict(context)
    values["env"] = dict(context.env)
    return _env().from_string(template).render(**values)
