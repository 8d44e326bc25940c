"""The live cluster as a policy: locate its fragment, read its state, give its Policy."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandfill.policies.document.errors import PolicyError
from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.document.model import ClusterShape, Policy
from sandfill.policies.live.fragment import FragmentError, find_fragment, read_metadata
from sandfill.policies.live.readback import live_mapping
from sandfill.policies.live.state import LiveState, read_live, read_machine
from sandfill.slurm import scontrol, sinfo
from sandfill.slurm.commands import Runner


@dataclass
class LivePolicy:
    state: LiveState
    mapping: dict[str, Any]
    policy: Policy | None  # None when the live settings do not form a valid policy
    notes: list[str]
    error: PolicyError | None = None


def slurm_conf_path(explicit: str | None = None) -> Path:
    """``--slurm-conf``, else ``$SLURM_CONF``, else ``/etc/slurm/slurm.conf``."""
    return Path(explicit or os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf")


def locate_fragment(slurm_conf: Path, explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return find_fragment(slurm_conf)


def read_policy(runner: Runner, fragment: Path | None) -> LivePolicy:
    state = read_live(runner)
    meta = None
    if fragment is not None:
        try:
            meta = read_metadata(fragment.read_text())
        except OSError:
            meta = None
    mapping, notes = live_mapping(state, meta)
    try:
        policy = policy_from_mapping(mapping, source="live cluster")
        return LivePolicy(state, mapping, policy, notes)
    except PolicyError as exc:
        return LivePolicy(state, mapping, None, notes, exc)


def cluster_shape(runner: Runner) -> tuple[ClusterShape, str]:
    """Nodes x (smallest) CPUs per node with the nodes' features, and the node list, from
    ``sinfo`` and ``scontrol show nodes``."""
    cpus = sinfo.node_cpus(sinfo.parse_sinfo_nodes(runner.check(sinfo.nodes_argv())))
    if not cpus:
        raise FragmentError("sinfo lists no nodes: is slurmctld running?")
    nodelist = runner.check(scontrol.hostlist_argv(sorted(cpus))).strip()
    machine = tuple(n for n in read_machine(runner) if n.name in cpus)
    return ClusterShape(len(cpus), min(cpus.values()), machine), nodelist
