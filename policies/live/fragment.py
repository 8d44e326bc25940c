"""The slurm.conf fragment a policy lives in: find it, read its sandfill header, write it
atomically.

``apply`` owns exactly one file: the one slurm.conf pulls in with ``Include`` (the
devcluster's ``etc/policy.conf``; a site's ``policy.conf`` next to its slurm.conf). The
fragment starts with the renderer's header plus one ``# sandfill-policy: {json}`` line that
keeps what Slurm itself does not store (the policy name, the roles, tier names that differ
from their partition, ``max_cpus_per_job``), so ``policy show`` can give back the whole
policy. Finding the fragment and reading that line is :mod:`sandfill.slurm.policy_meta`'s
job (the one place for the format, also read by Dask); this module writes it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandfill.policies.document.model import MachineNode, NodeSet, Policy
from sandfill.policies.document.render import check_line, render_slurm_conf
from sandfill.slurm.policy_meta import (
    FragmentError,
    find_fragment,
    metadata_line,
    read_metadata,
)

__all__ = [
    "FragmentError",
    "find_fragment",
    "fragment_nodes",
    "metadata",
    "read_metadata",
    "render_fragment",
    "write_atomic",
]


def metadata(policy: Policy, nodes: str | None = None) -> dict[str, Any]:
    """What Slurm does not store about ``policy``: with node sets, also the cluster's node
    list the fragment was written for (``nodes``) and each set as the policy gives it (a
    feature set reads back as features, not as the nodes it resolved to)."""
    meta: dict[str, Any] = {
        "name": policy.name,
        "roles": dict(policy.roles),
        "tiers": {t.name: t.partition for t in policy.tiers},
        "max_cpus_per_job": {
            t.name: t.max_cpus_per_job for t in policy.tiers if t.max_cpus_per_job is not None
        },
    }
    sets = {t.name: node_set_mapping(t.nodes) for t in policy.tiers if t.nodes is not None}
    if sets:
        meta["nodes"] = nodes
        meta["node_sets"] = sets
    return meta


def node_set_mapping(nodes: NodeSet) -> dict[str, Any]:
    """A node set as the policy file writes it (``{features: [..]}`` or ``{list: ..}``)."""
    if nodes.features is not None:
        return {"features": list(nodes.features)}
    return {"list": nodes.list_}


def render_fragment(policy: Policy, *, nodes: str, accounting: bool,
                    machine: Sequence[MachineNode] = ()) -> str:
    """The renderer's fragment with the sandfill metadata line after its header line
    (``nodes``: the cluster's; ``machine``: its nodes and features, for node sets)."""
    text = render_slurm_conf(policy, nodes=nodes, accounting=accounting, machine=machine)
    head, _, rest = text.partition("\n")
    meta = metadata_line(metadata(policy, nodes))
    check_line(meta)  # one printable comment line, whatever the names hold
    return f"{head}\n{meta}\n{rest}"


def fragment_nodes(text: str) -> str | None:
    """The cluster's node list a fragment was written for: its metadata's ``nodes`` (written
    with node sets), else the ``Nodes=`` every partition line shares (None if they differ)."""
    meta = read_metadata(text) or {}
    if isinstance(meta.get("nodes"), str):
        return meta["nodes"]
    found = {
        m.group(1)
        for m in re.finditer(r"^PartitionName=\S+.*?\bNodes=(\S+)", text, re.MULTILINE)
    }
    return found.pop() if len(found) == 1 else None


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` in one rename (a reader sees the old or the new file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
