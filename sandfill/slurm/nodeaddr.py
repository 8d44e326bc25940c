"""Each node's address as slurm.conf declares it (``NodeAddr``, else the node's name), read
from the file itself: no Slurm command, so the hub and every Dask cluster know where a node
is without asking the controller. The hub proxies to a server at its node's address; a Dask
scheduler listens on the address its host uses to reach the worker nodes."""

from __future__ import annotations

import re
from pathlib import Path

from sandfill.slurm.hostlist import expand_hostlist
from sandfill.slurm.policy_meta import includes

_NODE_LINE = re.compile(r"\s*NodeName=(?P<names>\S+)(?P<rest>.*)", re.IGNORECASE)
_ADDR = re.compile(r"\bNodeAddr=(?P<addrs>\S+)", re.IGNORECASE)


class NodeAddrError(RuntimeError):
    """slurm.conf cannot be read, or names no node; the message names the file."""


def parse_node_addresses(text: str) -> dict[str, str]:
    """Node name → address of the ``NodeName=`` lines in slurm.conf ``text``: the line's
    ``NodeAddr`` list matched name by name (a shorter list: the last address serves the
    rest), else the name itself (Slurm then resolves the name). ``NodeName=DEFAULT`` is no node."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _NODE_LINE.fullmatch(line.split("#", 1)[0])
        if m is None or m["names"].upper() == "DEFAULT":
            continue
        names = expand_hostlist(m["names"])
        a = _ADDR.search(m["rest"])
        addrs = expand_hostlist(a["addrs"]) if a else names
        for i, name in enumerate(names):
            out[name] = addrs[min(i, len(addrs) - 1)] if addrs else name
    return out


def node_addresses(slurm_conf: str | Path) -> dict[str, str]:
    """:func:`parse_node_addresses` of ``slurm_conf`` and the files it includes;
    :class:`NodeAddrError` naming the file when it cannot be read or declares no node."""
    path = Path(slurm_conf)
    try:
        text = path.read_text()
        extra = [p.read_text() for p in includes(path) if p.exists()]
    except OSError as exc:
        raise NodeAddrError(f"cannot read {exc.filename or path}: {exc.strerror}") from None
    out = parse_node_addresses("\n".join([text, *extra]))
    if not out:
        raise NodeAddrError(f"{path} declares no node (no NodeName= line)")
    return out
