"""Read a live cluster's scheduling state: ``scontrol show config``, ``scontrol show
partition -o`` and ``sacctmgr show qos -P``, kept both as raw text (to prove a failed or
refused apply changed nothing, byte for byte) and parsed."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandfill.slurm.commands import Runner

QOS_FORMAT = "Name,Priority,MaxJobsPU,MaxTRESPU,Preempt,PreemptMode"
_VOLATILE = ("Configuration data as of",)


@dataclass(frozen=True)
class QosRow:
    name: str
    priority: int
    max_jobs_per_user: int | None
    max_cpus_per_user: int | None
    preempt: tuple[str, ...]
    preempt_mode: str  # "cluster" = inherit the cluster-wide mode

    def settings(self) -> list[str]:
        """sacctmgr ``set`` arguments that restore this row (``-1`` clears a limit)."""
        out = [
            f"Priority={self.priority}",
            f"MaxJobsPerUser={self.max_jobs_per_user if self.max_jobs_per_user is not None else -1}",
            "MaxTRESPerUser=cpu="
            + str(self.max_cpus_per_user if self.max_cpus_per_user is not None else -1),
            "Preempt=" + ",".join(self.preempt),
            f"PreemptMode={(self.preempt_mode or 'cluster').capitalize()}",
        ]
        return out


@dataclass(frozen=True)
class LiveState:
    config_text: str
    partition_text: str
    qos_text: str  # "" without accounting
    config: dict[str, str] = field(default_factory=dict)
    partitions: list[dict[str, str]] = field(default_factory=list)
    qos: dict[str, QosRow] = field(default_factory=dict)

    @property
    def accounting(self) -> bool:
        return self.config.get("AccountingStorageType", "") == "accounting_storage/slurmdbd"

    def fingerprint(self) -> tuple[str, str, str]:
        """The raw outputs without lines that change by themselves (the timestamp header)."""
        cfg = "\n".join(
            ln for ln in self.config_text.splitlines() if not ln.startswith(_VOLATILE)
        )
        return cfg, self.partition_text, self.qos_text


def read_live(runner: Runner) -> LiveState:
    """Ask the controller (and slurmdbd, when configured) for the current state."""
    cfg_text = runner.check(["scontrol", "show", "config"])
    config = parse_config(cfg_text)
    part_text = runner.check(["scontrol", "show", "partition", "-o"])
    partitions = [parse_partition_line(ln) for ln in part_text.splitlines() if ln.strip()]
    qos_text = ""
    qos: dict[str, QosRow] = {}
    if config.get("AccountingStorageType") == "accounting_storage/slurmdbd":
        qos_text = runner.check(["sacctmgr", "-n", "-P", "show", "qos", f"format={QOS_FORMAT}"])
        qos = parse_qos(qos_text)
    return LiveState(cfg_text, part_text, qos_text, config, partitions, qos)


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config``: ``Key = value`` lines (the first per key wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep and key.strip() and " " not in key.strip():
            out.setdefault(key.strip(), value.strip())
    return out


def scheduler_params(value: str) -> dict[str, str]:
    """A ``SchedulerParameters`` value as key -> value ("" for flags such as bf_continue)."""
    out: dict[str, str] = {}
    for item in value.split(","):
        key, _, v = item.strip().partition("=")
        if key:
            out[key] = v.strip()
    return out


def parse_partition_line(line: str) -> dict[str, str]:
    """One ``scontrol show partition -o`` line: space-separated ``Key=value`` tokens."""
    out: dict[str, str] = {}
    for tok in line.split():
        key, sep, value = tok.partition("=")
        if sep:
            out[key] = value
    return out


def parse_qos(text: str) -> dict[str, QosRow]:
    """``sacctmgr -n -P show qos format=`` :data:`QOS_FORMAT`."""
    out: dict[str, QosRow] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        f = (line.split("|") + [""] * 6)[:6]
        name, prio, mjpu, mtrespu, preempt, pmode = f
        out[name] = QosRow(
            name=name,
            priority=int(prio) if prio.strip().lstrip("-").isdigit() else 0,
            max_jobs_per_user=int(mjpu) if mjpu.isdigit() else None,
            max_cpus_per_user=tres_cpu(mtrespu),
            preempt=tuple(p for p in preempt.split(",") if p),
            preempt_mode=(pmode or "cluster").lower(),
        )
    return out


def tres_cpu(text: str) -> int | None:
    """The ``cpu=N`` of a TRES string such as ``cpu=16,node=2``."""
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key == "cpu" and value.isdigit():
            return int(value)
    return None
