"""The spawn form: choices from the site and the scheduler, strict server-side validation.

Whatever a user sends — through the HTML form or as ``user_options`` in the REST API —
goes through :func:`validate_request`, which returns a typed :class:`ResourceRequest` or
raises :class:`FormError` naming the field and the value. Only a ``ResourceRequest``
ever reaches the batch script.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from tornado import web

from sandfill.hub.site import Profile
from sandfill.hub.units import format_memory, format_walltime, parse_memory_mb, parse_walltime
from sandfill.slurm.view import PartitionInfo

FIELDS = ("profile", "cpus", "memory", "walltime", "partition", "account")
CUSTOM = "custom"
MAX_FIELD_LEN = 64
_SAFE = {
    "profile": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "cpus": re.compile(r"^-?[0-9]+$"),  # a negative number gets the range message
    "memory": re.compile(r"^[0-9]+(\.[0-9]+)? ?[A-Za-z]*$"),
    "walltime": re.compile(r"^[0-9][0-9:.-]*( ?[A-Za-z]+)?$"),
    "partition": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "account": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHELL = set("`$;&|<>(){}[]\\\"'*?!~#=, \t")


class FormError(web.HTTPError):
    """A rejected field. Shown on the form (JupyterHub re-renders it with this message) and
    returned as HTTP 400 by the REST API."""

    def __init__(self, field_name: str, value: Any, reason: str) -> None:
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        message = f"{field_name}: {shown!r} {reason}"
        super().__init__(400, message)
        self.field = field_name
        self.value = value
        self.reason = reason
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.jupyterhub_message


@dataclass(frozen=True)
class ResourceRequest:
    """A validated request: the only thing the batch script template ever sees."""

    profile: str
    cpus: int
    memory_mb: int
    walltime_s: int
    partition: str
    account: str | None = None

    def as_options(self) -> dict[str, Any]:
        """JSON-safe ``user_options`` (stored in the hub's database, re-validated on use)."""
        d: dict[str, Any] = {
            "profile": self.profile,
            "cpus": self.cpus,
            "memory": format_memory(self.memory_mb),
            "walltime": format_walltime(self.walltime_s),
            "partition": self.partition,
        }
        if self.account:
            d["account"] = self.account
        return d

    def describe(self) -> str:
        return (
            f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}, {format_memory(self.memory_mb)}, "
            f"{format_walltime(self.walltime_s)} on {self.partition}"
            + (f" (account {self.account})" if self.account else "")
        )


@dataclass(frozen=True)
class Choices:
    """What one user may ask for right now."""

    profiles: tuple[Profile, ...]
    partitions: Mapping[str, PartitionInfo | None]  # allowed → live info (None: unknown)
    default_partition: str
    max_cpus: int
    max_memory_mb: int
    max_walltime_s: int
    accounts: tuple[str, ...] = ()
    default_account: str | None = None
    scheduler_error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def limits_for(self, partition: str) -> tuple[int, int, int]:
        """(max CPUs, max MB, max seconds) for a job in ``partition``."""
        cpus, mem, secs = self.max_cpus, self.max_memory_mb, self.max_walltime_s
        info = self.partitions.get(partition)
        if info is not None:
            cpus = min(cpus, info.cpus_per_node)
            if info.memory_mb:
                mem = min(mem, info.memory_mb)
            if info.max_time_s:
                secs = min(secs, info.max_time_s)
        return cpus, mem, secs


def flatten_form(formdata: Mapping[str, Any]) -> dict[str, str]:
    """JupyterHub's form data (``{name: [values]}``) → one string per field. A field sent
    twice is an error (a second value could otherwise slip past the checks)."""
    out: dict[str, str] = {}
    for key, values in formdata.items():
        if key == "_xsrf":
            continue
        if isinstance(values, list | tuple):
            if len(values) != 1:
                raise FormError(key, values, "must have exactly one value")
            value = values[0]
        else:
            value = values
        if isinstance(value, bytes):
            raise FormError(key, "<file>", "is not accepted")
        out[key] = value
    return out


def _text(name: str, value: Any) -> str:
    """A field's raw value → stripped text, or FormError for anything but a short, plain
    string/number without control or shell characters."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FormError(name, value, "must be a single text value")
    text = str(value)
    if _CONTROL.search(text):
        raise FormError(name, value, "contains a line break or control character")
    text = text.strip()
    if len(text) > MAX_FIELD_LEN:
        raise FormError(name, value, f"is longer than {MAX_FIELD_LEN} characters")
    bad = sorted({ch for ch in text if ch in _SHELL} - ({" "} if name in ("memory", "walltime") else set()))
    if bad:
        raise FormError(name, value, f"contains characters that are not allowed: {' '.join(bad)}")
    if text and not _SAFE[name].match(text):
        raise FormError(name, value, "is not in the expected format")
    return text


def _reason(exc: Exception, value: str) -> str:
    return str(exc).removeprefix(repr(value)).strip()


def validate_request(options: Mapping[str, Any], choices: Choices) -> ResourceRequest:
    """Check every field against the whitelist and limits; return the typed request."""
    if not isinstance(options, Mapping):
        raise FormError("user_options", options, "must be a mapping of fields")
    for key, value in options.items():
        if key not in FIELDS:
            raise FormError(str(key), value, f"is not a known field (fields: {', '.join(FIELDS)})")
    raw = {k: _text(k, v) for k, v in options.items()}

    profile_name = raw.get("profile") or (choices.profiles[0].name if choices.profiles else CUSTOM)
    profile = choices.profile(profile_name)
    if profile is None and profile_name != CUSTOM:
        names = ", ".join([p.name for p in choices.profiles] + [CUSTOM])
        raise FormError("profile", profile_name, f"is not one of: {names}")

    partition = raw.get("partition") or (profile.partition if profile and profile.partition else choices.default_partition)
    if partition not in choices.partitions:
        raise FormError("partition", partition, f"is not one of: {', '.join(choices.partitions) or '(none available)'}")
    info = choices.partitions.get(partition)
    if info is not None and not info.up:
        raise FormError("partition", partition, "is not accepting jobs right now (state down)")
    max_cpus, max_mb, max_s = choices.limits_for(partition)

    cpus_text = raw.get("cpus") or (str(profile.cpus) if profile else "")
    if not cpus_text:
        raise FormError("cpus", "", "is required")
    cpus = int(cpus_text) if re.fullmatch(r"-?[0-9]{1,6}", cpus_text) else -1
    if not 1 <= cpus <= max_cpus:
        raise FormError("cpus", raw.get("cpus", cpus_text), f"must be a whole number from 1 to {max_cpus}")

    mem_text = raw.get("memory") or (format_memory(profile.memory_mb) if profile else "")
    if not mem_text:
        raise FormError("memory", "", "is required")
    try:
        memory_mb = parse_memory_mb(mem_text)
    except ValueError as exc:
        raise FormError("memory", mem_text, _reason(exc, mem_text)) from None
    if memory_mb > max_mb:
        raise FormError("memory", mem_text, f"is more than the limit of {format_memory(max_mb)}")

    wall_text = raw.get("walltime") or (format_walltime(profile.walltime_s) if profile else "")
    if not wall_text:
        raise FormError("walltime", "", "is required")
    try:
        walltime_s = parse_walltime(wall_text)
    except ValueError as exc:
        raise FormError("walltime", wall_text, _reason(exc, wall_text)) from None
    if walltime_s > max_s:
        raise FormError("walltime", wall_text, f"is longer than the limit of {format_walltime(max_s)} on {partition}")

    account = raw.get("account") or choices.default_account
    if account is not None and choices.accounts and account not in choices.accounts:
        raise FormError("account", account, f"is not one of your accounts: {', '.join(choices.accounts)}")
    if account is not None and not choices.accounts and raw.get("account"):
        raise FormError("account", account, "is not one of your accounts (you have no Slurm associations)")

    return ResourceRequest(
        profile=profile.name if profile else CUSTOM,
        cpus=cpus,
        memory_mb=memory_mb,
        walltime_s=walltime_s,
        partition=partition,
        account=account,
    )


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def render_form(choices: Choices, previous: ResourceRequest | None = None) -> str:
    """The HTML of the options form (fields pre-filled from the first or the previous
    profile; the profile buttons fill them in the browser)."""
    first = choices.profile(previous.profile) if previous else None
    first = first or (choices.profiles[0] if choices.profiles else None)
    profiles = [
        {
            **asdict(p),
            "memory": format_memory(p.memory_mb),
            "walltime": format_walltime(p.walltime_s),
            "partition": p.partition or choices.default_partition,
        }
        for p in choices.profiles
    ]
    if previous is not None and first is None:
        values = previous.as_options()
    elif first is not None:
        values = next(p for p in profiles if p["name"] == first.name)
    else:
        values = {"cpus": 1, "memory": "2G", "walltime": "01:00:00", "partition": choices.default_partition}
    parts = [
        {"name": name, "info": info.as_dict() if info else None, "limits": choices.limits_for(name)}
        for name, info in choices.partitions.items()
    ]
    return _env.get_template("sandfill_options_form.html").render(
        profiles=profiles,
        selected=first.name if first else "custom",
        values=values,
        partitions=parts,
        accounts=choices.accounts,
        default_account=choices.default_account,
        max_cpus=choices.max_cpus,
        max_memory=format_memory(choices.max_memory_mb),
        max_walltime=format_walltime(choices.max_walltime_s),
        scheduler_error=choices.scheduler_error,
        notes=choices.notes,
        format_walltime=format_walltime,
    )


def allowed_partitions(
    site_partitions: Sequence[str], live: Mapping[str, PartitionInfo] | None
) -> dict[str, PartitionInfo | None]:
    """The site's whitelist, in its order, restricted to partitions the scheduler has (all
    of the whitelist, without live data, when the scheduler did not answer)."""
    if live is None:
        return {p: None for p in site_partitions}
    return {p: live[p] for p in site_partitions if p in live}
