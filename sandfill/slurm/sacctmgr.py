"""``sacctmgr``: QOS records (show, add, modify, delete) and their parser."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sandfill.slurm.states import check_users

QOS_FORMAT = "Name,Priority,MaxJobsPU,MaxTRESPU,Preempt,PreemptMode"


@dataclass(frozen=True)
class QosRow:
    """One QOS as ``sacctmgr show qos`` prints it (None: no limit)."""

    name: str
    priority: int
    max_jobs_per_user: int | None
    max_cpus_per_user: int | None
    preempt: tuple[str, ...]
    preempt_mode: str  # "cluster" = inherit the cluster-wide mode

    def settings(self) -> list[str]:
        """sacctmgr ``set`` arguments that restore this row (``-1`` clears a limit)."""
        return [
            *qos_limit_settings(self.priority, self.max_jobs_per_user, self.max_cpus_per_user),
            "Preempt=" + ",".join(self.preempt),
            f"PreemptMode={(self.preempt_mode or 'cluster').capitalize()}",
        ]


def _limit(value: int | None) -> int:
    return value if value is not None else -1


def qos_limit_settings(priority: int, max_jobs_per_user: int | None,
                       max_cpus_per_user: int | None) -> list[str]:
    """``set`` arguments for a QOS's priority and per-user caps (None: clear the cap)."""
    return [
        f"Priority={priority}",
        f"MaxJobsPerUser={_limit(max_jobs_per_user)}",
        f"MaxTRESPerUser=cpu={_limit(max_cpus_per_user)}",
    ]


def show_qos_argv() -> list[str]:
    """Every QOS, ``|``-separated in :data:`QOS_FORMAT`, without a header (:func:`parse_qos`)."""
    return ["sacctmgr", "-n", "-P", "show", "qos", f"format={QOS_FORMAT}"]


def add_qos_argv(name: str) -> list[str]:
    """Create QOS ``name`` ("Nothing new added" when it exists)."""
    return ["sacctmgr", "-i", "add", "qos", name]


def modify_qos_argv(name: str, settings: Sequence[str]) -> list[str]:
    """Set ``settings`` (``Key=value`` strings) on QOS ``name``."""
    return ["sacctmgr", "-i", "modify", "qos", "where", f"name={name}", "set", *settings]


def delete_qos_argv(name: str) -> list[str]:
    return ["sacctmgr", "-i", "delete", "qos", name]


def parse_qos(text: str) -> dict[str, QosRow]:
    """:func:`show_qos_argv` output → QOS name → row."""
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


# ---- associations (the hub's form: which accounts, partitions and QOS a user may use) ----
@dataclass(frozen=True)
class Association:
    account: str
    partition: str | None  # None: any partition
    qos: tuple[str, ...]


def associations_argv(user: str) -> list[str]:
    """The associations of ``user`` (account, partition, QOS list); ValueError for a
    ``user`` that is not a plain user name."""
    (name,) = check_users([user])
    return ["sacctmgr", "-n", "-P", "show", "assoc", f"user={name}", "format=Account,Partition,QOS"]


def parse_associations(stdout: str) -> list[Association]:
    """Parse :func:`associations_argv` output (``Account|Partition|QOS``)."""
    out = []
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or not parts[0]:
            continue
        out.append(Association(parts[0], parts[1] or None, tuple(q for q in parts[2].split(",") if q)))
    return out


# ---- clusters, accounts and users (the devcluster's accounting set-up) -------------------
_NO_CHANGE = ("Nothing new added", "already exists", "Nothing modified")


def show_clusters_argv() -> list[str]:
    """The clusters slurmdbd knows (answers once slurmdbd is up)."""
    return ["sacctmgr", "-n", "show", "cluster"]


def immediate_argv(args: Sequence[str]) -> list[str]:
    """``sacctmgr -i`` (no confirmation prompt) with ``args``, e.g. ``add user …``."""
    return ["sacctmgr", "-i", *args]


def is_no_change(text: str) -> bool:
    """Whether sacctmgr's message says there was nothing to do (the record exists)."""
    return any(m in text for m in _NO_CHANGE)
