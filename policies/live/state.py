"""Read a live cluster's scheduling state: ``scontrol show config``, ``scontrol show
partition -o`` and ``sacctmgr show qos -P``, kept both as raw text (to prove a failed or
refused apply changed nothing, byte for byte) and parsed (by :mod:`sandfill.slurm.scontrol`
and :mod:`sandfill.slurm.sacctmgr`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandfill.policies.document.model import MachineNode
from sandfill.slurm import sacctmgr, scontrol
from sandfill.slurm.commands import Runner
from sandfill.slurm.sacctmgr import QosRow

ACCOUNTING_SLURMDBD = "accounting_storage/slurmdbd"


@dataclass(frozen=True)
class LiveState:
    config_text: str
    partition_text: str
    qos_text: str  # "" without accounting
    config: dict[str, str] = field(default_factory=dict)
    partitions: list[dict[str, str]] = field(default_factory=list)
    qos: dict[str, QosRow] = field(default_factory=dict)
    #: the cluster's nodes with their features (``scontrol show nodes``): node sets resolve
    #: against them; not part of the fingerprint (node states change by themselves)
    nodes: tuple[MachineNode, ...] = ()

    @property
    def accounting(self) -> bool:
        return self.config.get("AccountingStorageType", "") == ACCOUNTING_SLURMDBD

    def fingerprint(self) -> tuple[str, str, str]:
        """The raw outputs without lines that change by themselves (the timestamp header)."""
        cfg = "\n".join(
            ln for ln in self.config_text.splitlines()
            if not ln.startswith(scontrol.CONFIG_VOLATILE)
        )
        return cfg, self.partition_text, self.qos_text


def read_live(runner: Runner) -> LiveState:
    """Ask the controller (and slurmdbd, when configured) for the current state."""
    cfg_text = runner.check(scontrol.show_config_argv())
    config = scontrol.parse_config(cfg_text)
    part_text = runner.check(scontrol.show_partitions_argv())
    partitions = scontrol.parse_partitions(part_text)
    qos_text = ""
    qos: dict[str, QosRow] = {}
    if config.get("AccountingStorageType") == ACCOUNTING_SLURMDBD:
        qos_text = runner.check(sacctmgr.show_qos_argv())
        qos = sacctmgr.parse_qos(qos_text)
    return LiveState(cfg_text, part_text, qos_text, config, partitions, qos, read_machine(runner))


def read_machine(runner: Runner) -> tuple[MachineNode, ...]:
    """The cluster's nodes, their CPUs and features, from ``scontrol show nodes``."""
    text = runner.check(scontrol.show_nodes_argv())
    return tuple(MachineNode(name, cpus, feats) for name, cpus, feats in scontrol.parse_nodes(text))
