"""Node classes of a site-shaped devcluster (``devcluster up --hosts``): unlike nodes, each
class with its count, CPUs, memory, features and GPUs, declared by ``--node-class`` flags or a
small YAML file (``--node-classes FILE``) and validated with :mod:`sandfill.schema`.

Naming: a class ``cpu`` of 2 nodes gives nodes ``cpu1`` and ``cpu2``; the node list of the
whole cluster is the classes' expressions joined (``cpu[1-2],bigmem1,gpu1``). The single-host
shape keeps its identical ``node1..nodeN`` (:func:`uniform`).

The file::

    classes:
      - {name: cpu, count: 2, cpus: 8, memory: 8G}
      - {name: gpu, count: 1, cpus: 8, memory: 8G, gpus: 2, features: [gpu, a100]}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, model_validator

from sandfill.schema import Invalid, MemoryMiB, Problem, SchemaError, SlurmName, Strict, validate

#: a class name: lower-case letters only, so ``name + index`` is a node name that never
#: runs into the next class's (``cpu1`` vs ``cpu11``) and a hostlist expression reads back
CLASS_NAME = re.compile(r"[a-z]{1,16}")
MAX_NODES = 64


class NodeClassesError(SchemaError):
    kind = "node classes"


def _class_name(value: str) -> str:
    if not CLASS_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a node class name (1 to 16 lower-case letters a-z)")
    return value


class NodeClass(Strict):
    """One class of identical nodes."""

    name: Annotated[str, AfterValidator(_class_name)]
    count: int = Field(ge=1, le=MAX_NODES)
    cpus: int = Field(8, ge=1, le=256)
    memory: MemoryMiB = 8000
    gpus: int = Field(0, ge=0, le=16)
    features: tuple[SlurmName, ...] | None = None  # default: the class name

    @property
    def feature_list(self) -> tuple[str, ...]:
        return self.features if self.features is not None else (self.name,)


class NodeClasses(Strict):
    classes: tuple[NodeClass, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_and_bounded(self) -> NodeClasses:
        problems: list[Problem] = []
        seen: set[str] = set()
        for i, c in enumerate(self.classes):
            if c.name in seen:
                problems.append(Problem(f"classes.{i}.name", f"class {c.name!r} is declared twice"))
            seen.add(c.name)
        total = sum(c.count for c in self.classes)
        if total > MAX_NODES:
            problems.append(Problem("classes", f"{total} nodes in all; at most {MAX_NODES}"))
        if problems:
            raise Invalid(problems)
        return self


#: the default of ``--hosts``: 2 CPU nodes, a big-memory node and a node with 2 GPUs (GRES
#: ``gpu:2``, Count= only, no device files). Memory is what Slurm schedules by; with
#: ``SlurmdParameters=config_overrides`` slurmd does not check it against the machine's RAM
#: (``SelectTypeParameters=CR_CPU``: memory is not a consumable either).
DEFAULT_HOSTS = NodeClasses(
    classes=(
        NodeClass(name="cpu", count=2, cpus=8, memory=8000),
        NodeClass(name="bigmem", count=1, cpus=8, memory=64000),
        NodeClass(name="gpu", count=1, cpus=8, memory=8000, gpus=2),
    )
)


@dataclass(frozen=True)
class NodeSpec:
    """One node as slurm.conf declares it."""

    name: str
    node_class: str
    cpus: int
    memory_mb: int
    gpus: int = 0
    features: tuple[str, ...] = ()


def nodes_of(classes: NodeClasses) -> list[NodeSpec]:
    return [
        NodeSpec(f"{c.name}{i}", c.name, c.cpus, c.memory, c.gpus, c.feature_list)
        for c in classes.classes
        for i in range(1, c.count + 1)
    ]


def uniform(n: int, *, cpus: int, memory_mb: int) -> list[NodeSpec]:
    """The single-host shape's ``node1..nodeN``, all alike, no features."""
    return [NodeSpec(f"node{i}", "node", cpus, memory_mb) for i in range(1, n + 1)]


def hostlist(nodes: Sequence[NodeSpec]) -> str:
    """The Slurm node list expression of ``nodes``, one range per class in order
    (``cpu[1-2],bigmem1,gpu1``; ``node[1-4]``)."""
    groups: dict[str, int] = {}
    for n in nodes:
        groups[n.node_class] = groups.get(n.node_class, 0) + 1
    return ",".join(f"{c}1" if k == 1 else f"{c}[1-{k}]" for c, k in groups.items())


def load(path: str | Path) -> NodeClasses:
    """Read and validate a node-classes file; :class:`NodeClassesError` names each bad key."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise NodeClassesError([Problem("", f"cannot read the file: {exc.strerror}")], str(p)) from None
    except yaml.YAMLError as exc:
        raise NodeClassesError([Problem("", f"not YAML: {exc}")], str(p)) from None
    return validate(NodeClasses, data, source=str(p), error=NodeClassesError)


def parse_flag(text: str) -> dict[str, Any]:
    """One ``--node-class`` flag, ``name=gpu,count=1,cpus=8,memory=8G,gpus=2,features=gpu+a100``,
    as the mapping of one class (validated with the others by :func:`from_flags`)."""
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise NodeClassesError([Problem("--node-class", "expected KEY=VALUE[,KEY=VALUE…]", part, True)])
        out[key.strip()] = value.split("+") if key.strip() == "features" else value.strip()
    return out


def from_flags(flags: Sequence[str]) -> NodeClasses:
    return validate(NodeClasses, {"classes": [parse_flag(f) for f in flags]}, source="--node-class", error=NodeClassesError)
