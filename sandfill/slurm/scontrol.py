"""``scontrol``: the controller's configuration and partitions, ``reconfigure``, host lists."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sandfill.slurm.hostlist import expand_hostlist
from sandfill.slurm.states import check_job_id, check_node_name
from sandfill.units import parse_timestamp

# Lines of ``scontrol show config`` that change by themselves (not part of the state).
CONFIG_VOLATILE = ("Configuration data as of",)


def show_config_argv() -> list[str]:
    """The running configuration, ``Key = value`` per line (:func:`parse_config`)."""
    return ["scontrol", "show", "config"]


def show_partitions_argv() -> list[str]:
    """Every partition, one line each (``-o``), as :func:`parse_partitions` reads them."""
    return ["scontrol", "show", "partition", "-o"]


def reconfigure_argv() -> list[str]:
    """Make slurmctld (and the slurmds) re-read slurm.conf."""
    return ["scontrol", "reconfigure"]


def resume_node_argv(node: str) -> list[str]:
    """Return node ``node`` (down, drained or failed) to service."""
    return ["scontrol", "update", f"nodename={check_node_name(node)}", "state=resume"]


def rename_job_argv(job_id: str, name: str) -> list[str]:
    """Rename job ``job_id`` to ``name`` (what any user may do to their own job: the name is
    theirs, which is why no parser of sandfill's reads it)."""
    return ["scontrol", "update", f"JobId={check_job_id(job_id)}", f"JobName={name}"]


def hostlist_argv(names: Iterable[str]) -> list[str]:
    """Compress node names into Slurm's host list syntax (``node[1-4]``)."""
    return ["scontrol", "show", "hostlist", ",".join(names)]


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


def parse_key_values(line: str) -> dict[str, str]:
    """One ``scontrol show … -o`` line (a partition, a reservation): ``Key=value`` tokens."""
    out: dict[str, str] = {}
    for tok in line.split():
        key, sep, value = tok.partition("=")
        if sep:
            out[key] = value
    return out


def show_nodes_argv() -> list[str]:
    """Every node, one line each (``-o``), as :func:`parse_nodes` reads them."""
    return ["scontrol", "show", "nodes", "-o"]


def parse_nodes(text: str) -> list[tuple[str, int, tuple[str, ...]]]:
    """:func:`show_nodes_argv` output: (name, CPUs, features) per node, in Slurm's order
    (``AvailableFeatures``; ``(null)`` is none). A line without a NodeName is skipped."""
    out = []
    for line in text.splitlines():
        kv = parse_key_values(line)
        name = kv.get("NodeName", "")
        if not name:
            continue
        feats = kv.get("AvailableFeatures", kv.get("Features", ""))
        features = tuple(f for f in feats.split(",") if f and f != "(null)")
        cpus = kv.get("CPUTot", "")
        out.append((name, int(cpus) if cpus.isdigit() else 0, features))
    return out


def parse_partitions(text: str) -> list[dict[str, str]]:
    """:func:`show_partitions_argv` output: one mapping per partition, in Slurm's order."""
    return [parse_key_values(ln) for ln in text.splitlines() if ln.strip()]


def show_reservations_argv() -> list[str]:
    """Every advance reservation, one line each (``-o``), as :func:`parse_reservations` reads."""
    return ["scontrol", "show", "reservation", "-o"]


@dataclass(frozen=True)
class Reservation:
    name: str
    start: float | None  # epoch seconds
    end: float | None
    nodes: tuple[str, ...]  # expanded node names


def parse_reservations(text: str) -> list[Reservation]:
    """:func:`show_reservations_argv` output (``No reservations in the system`` → none)."""
    out: list[Reservation] = []
    for line in text.splitlines():
        fields = parse_key_values(line)
        if "ReservationName" not in fields:
            continue
        try:
            nodes = tuple(expand_hostlist(n)) if (n := fields.get("Nodes", "")) and n != "(null)" else ()
        except ValueError:
            continue  # a node list that is not one: that reservation only
        out.append(
            Reservation(
                name=fields["ReservationName"],
                start=parse_timestamp(fields.get("StartTime", "")),
                end=parse_timestamp(fields.get("EndTime", "")),
                nodes=nodes,
            )
        )
    return out


def ping_argv() -> list[str]:
    """Ask the controller whether it is up."""
    return ["scontrol", "ping"]


def parse_ping(text: str) -> bool:
    """Whether ``scontrol ping`` says a controller is UP (``Slurmctld(primary) at h is UP``)."""
    return any(line.rstrip().endswith(" is UP") for line in text.splitlines())
