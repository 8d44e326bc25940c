"""The spawn form: choices from the site and the scheduler, strict server-side validation.

Memory and walltime are read by :mod:`sandfill.units`, as everywhere in sandfill (``"2:00"``
is two minutes, ``"2h"`` two hours, a bare number minutes; ``4G`` is 4 GiB, a bare number
MiB). The form shows, under each field, how the value will be read before it is sent; the
small script that does so mirrors those rules, and the server stays the authority.

Whatever a user sends — through the HTML form or as ``user_options`` in the REST API —
goes through :func:`validate_request`, which returns a typed :class:`ResourceRequest` or
raises :class:`FormError` naming the field and the value. Only a ``ResourceRequest``
ever reaches the batch script.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
from tornado import web

from sandfill import units
from sandfill.hub.site import Profile
from sandfill.schema import Gres, parse_gres
from sandfill.slurm.sinfo import PartitionInfo
from sandfill.slurm.view import SchedulerView

FIELDS = ("profile", "cpus", "memory", "walltime", "partition", "account", "gres")
CUSTOM = "custom"
MAX_FIELD_LEN = 64
REQUIRED = "is required"
_SAFE = {  # full matches (memory and walltime: sandfill.units' own full matches)
    "profile": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"),
    "cpus": re.compile(r"-?[0-9]+"),  # a negative number gets the range message
    "partition": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"),
    "account": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"),
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


class FormErrors(FormError):
    """Every rejected field of one request (a user fixes them all at once). Its ``field``
    and ``value`` are the first error's; :attr:`errors` maps each field to its error."""

    def __init__(self, errors: Sequence[FormError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.value, first.reason)
        self.errors = {e.field: e for e in errors}
        if len(errors) > 1:
            self.jupyterhub_message = f"{len(errors)} fields need a change: " + "; ".join(str(e) for e in errors)


@dataclass(frozen=True)
class ResourceRequest:
    """A validated request: the only thing the batch script template ever sees."""

    profile: str
    cpus: int
    memory_mb: int
    walltime_s: int
    partition: str
    account: str | None = None
    gres: Gres | None = None  # e.g. gpu:1, only where the site offers it

    def as_options(self) -> dict[str, Any]:
        """JSON-safe ``user_options`` (stored in the hub's database, re-validated on use)."""
        d: dict[str, Any] = {
            "profile": self.profile,
            "cpus": self.cpus,
            "memory": units.format_memory(self.memory_mb),
            "walltime": units.format_duration(self.walltime_s),
            "partition": self.partition,
        }
        if self.account:
            d["account"] = self.account
        if self.gres:
            d["gres"] = str(self.gres)
        return d

    def describe(self) -> str:
        return (
            f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}, {units.format_memory(self.memory_mb)}, "
            f"{units.format_duration(self.walltime_s)}"
            + (f", {self.gres}" if self.gres else "")
            + f" on {self.partition}"
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
    hidden: tuple[tuple[str, str], ...] = ()  # (profile, why it cannot start here)
    gres: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # partition → GRES → most per server

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def limits_for(self, partition: str) -> tuple[int, int, int]:
        """(max CPUs, max MiB, max seconds) for a job in ``partition``."""
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
    if text and name in _SAFE and not _SAFE[name].fullmatch(text):
        raise FormError(name, value, "is not in the expected format")
    return text


def _reason(exc: Exception, value: str) -> str:
    problem = getattr(exc, "problem", str(exc))
    return problem.removeprefix(repr(value)).strip()


@dataclass(frozen=True)
class _Quantity:
    """A unit-bearing field: how it is read (:mod:`sandfill.units`), shown, and limited."""

    name: str
    parse: Callable[[str], int]
    show: Callable[[int], str]
    too_big: str  # the reason when over the limit ({limit}, {partition})


_MEMORY = _Quantity("memory", units.parse_memory, units.format_memory, "is more than the limit of {limit}")
_WALLTIME = _Quantity(
    "walltime",
    lambda text: units.parse_duration(text, positive=True),
    units.format_duration,
    "is longer than the limit of {limit} on {partition}",
)


def _quantity(q: _Quantity, raw: Mapping[str, str], profile: Profile | None, limit: int, partition: str) -> int:
    """Memory (MiB) or walltime (seconds): from the field, else the profile; within ``limit``."""
    text = raw.get(q.name) or (q.show(getattr(profile, q.name)) if profile else "")
    if not text:
        raise FormError(q.name, "", REQUIRED)
    try:
        value = q.parse(text)
    except units.UnitError as exc:
        raise FormError(q.name, text, _reason(exc, text)) from None
    if value > limit:
        raise FormError(q.name, text, q.too_big.format(limit=q.show(limit), partition=partition))
    return value


def _profile(raw: Mapping[str, str], choices: Choices) -> Profile | None:
    name = raw.get("profile") or (choices.profiles[0].name if choices.profiles else CUSTOM)
    profile = choices.profile(name)
    if profile is None and name != CUSTOM:
        names = ", ".join([p.name for p in choices.profiles] + [CUSTOM])
        raise FormError("profile", name, f"is not one of: {names}")
    return profile


def _partition(raw: Mapping[str, str], profile: Profile | None, choices: Choices) -> str:
    partition = raw.get("partition") or (profile.partition if profile and profile.partition else choices.default_partition)
    if partition not in choices.partitions:
        raise FormError("partition", partition, f"is not one of: {', '.join(choices.partitions) or '(none available)'}")
    info = choices.partitions.get(partition)
    if info is not None and not info.up:
        raise FormError("partition", partition, "is not accepting jobs right now (state down)")
    return partition


def _cpus(raw: Mapping[str, str], profile: Profile | None, max_cpus: int) -> int:
    text = raw.get("cpus") or (str(profile.cpus) if profile else "")
    if not text:
        raise FormError("cpus", "", REQUIRED)
    cpus = int(text) if re.fullmatch(r"-?[0-9]{1,6}", text) else -1
    if not 1 <= cpus <= max_cpus:
        raise FormError("cpus", raw.get("cpus", text), f"must be a whole number from 1 to {max_cpus}")
    return cpus


def _account(raw: Mapping[str, str], choices: Choices) -> str | None:
    account = raw.get("account") or choices.default_account
    if account is not None and choices.accounts and account not in choices.accounts:
        raise FormError("account", account, f"is not one of your accounts: {', '.join(choices.accounts)}")
    if account is not None and not choices.accounts and raw.get("account"):
        raise FormError("account", account, "is not one of your accounts (you have no Slurm associations)")
    return account


def _gres(raw: Mapping[str, str], choices: Choices, partition: str) -> Gres | None:
    """The GRES asked for (``gpu:1``), if the site offers that GRES on ``partition`` and no more
    than its most per server; none (empty, or a count of 0) is no GRES."""
    text = raw.get("gres") or ""
    if not text:
        return None
    try:
        gres = parse_gres(text)
    except ValueError:
        raise FormError("gres", text, "is not a GRES request such as gpu:1 (name:count)") from None
    offered = choices.gres.get(partition, {})
    if gres.name not in offered:
        there = ", ".join(f"{n} 0-{m}" for n, m in offered.items()) or "no GRES"
        raise FormError("gres", text, f"is not offered on {partition} (there: {there})")
    if gres.count > offered[gres.name]:
        raise FormError("gres", text, f"is more than the {offered[gres.name]} {gres.name} one server may have on {partition}")
    return gres if gres.count else None


def validate_request(options: Mapping[str, Any], choices: Choices) -> ResourceRequest:
    """Check every field against the whitelist and limits; return the typed request, or
    raise :class:`FormErrors` naming every bad field (not only the first)."""
    if not isinstance(options, Mapping):
        raise FormError("user_options", options, "must be a mapping of fields")
    errors: dict[str, FormError] = {}

    def attempt(step: Callable[[], Any], fallback: Any = None) -> Any:
        try:
            return step()
        except FormError as exc:
            if not (exc.reason == REQUIRED and "profile" in errors):  # a bad profile filled
                errors.setdefault(exc.field, exc)  # nothing in: that is said once, by profile
            return fallback

    raw: dict[str, str] = {}
    for key, value in options.items():
        if key not in FIELDS:
            errors.setdefault(str(key), FormError(str(key), value, f"is not a known field (fields: {', '.join(FIELDS)})"))
        elif (text := attempt(lambda k=key, v=value: _text(k, v))) is not None:
            raw[key] = text
    profile = attempt(lambda: _profile(raw, choices))
    partition = attempt(lambda: _partition(raw, profile, choices), choices.default_partition)
    max_cpus, max_mib, max_s = choices.limits_for(partition)
    cpus = attempt(lambda: _cpus(raw, profile, max_cpus))
    memory = attempt(lambda: _quantity(_MEMORY, raw, profile, max_mib, partition))
    walltime = attempt(lambda: _quantity(_WALLTIME, raw, profile, max_s, partition))
    account = attempt(lambda: _account(raw, choices))
    gres = attempt(lambda: _gres(raw, choices, partition))
    if errors:
        raise FormErrors(list(errors.values()))
    return ResourceRequest(
        profile=profile.name if profile else CUSTOM,
        cpus=cpus,
        memory_mb=memory,
        walltime_s=walltime,
        partition=partition,
        account=account,
        gres=gres,
    )


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def render_form(
    choices: Choices,
    previous: ResourceRequest | None = None,
    refused: tuple[Mapping[str, str], FormError] | None = None,
) -> str:
    """The HTML of the options form (fields pre-filled from the first or the previous
    profile; the profile buttons fill them in the browser; hints under memory and walltime
    say how each value is read and whether it is within the partition's limits). After a
    refusal (``refused``: what was typed and why), the fields keep what the user typed and
    each error is shown next to its field."""
    first = choices.profile(previous.profile) if previous else None
    first = first or (choices.profiles[0] if choices.profiles else None)
    profiles = [
        {
            "name": p.name,
            "description": p.label(),
            "cpus": p.cpus,
            "memory": units.format_memory(p.memory),
            "walltime": units.format_duration(p.walltime),
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
    selected = first.name if first else CUSTOM
    errors: dict[str, str] = {}
    if refused is not None:
        typed, exc = refused
        values = {**values, **{k: v for k, v in typed.items() if k in FIELDS and isinstance(v, str)}}
        selected = typed.get("profile") if choices.profile(typed.get("profile", "")) else CUSTOM
        errors = {f: e.reason for f, e in getattr(exc, "errors", {exc.field: exc}).items()}
    parts = [
        {"name": name, "info": info.as_dict() if info else None, "limits": choices.limits_for(name)}
        for name, info in choices.partitions.items()
    ]
    return _env.get_template("sandfill_options_form.html").render(
        profiles=profiles,
        selected=selected,
        values=values,
        errors=errors,
        other_errors=[f"{f}: {why}" for f, why in errors.items() if f not in _BESIDE_FIELD + (("gres",) if choices.gres else ())],
        partitions=parts,
        accounts=choices.accounts,
        default_account=values.get("account", choices.default_account),
        gres=_gres_options(choices),
        max_cpus=choices.max_cpus,
        max_memory=units.format_memory(choices.max_memory_mb),
        max_walltime=units.format_duration(choices.max_walltime_s),
        scheduler_error=choices.scheduler_error,
        notes=choices.notes,
        format_duration=units.format_duration,
        format_memory=units.format_memory,
        duration_forms=units.DURATION_FORMS,
        memory_forms=units.MEMORY_FORMS,
    )


_BESIDE_FIELD = ("cpus", "memory", "walltime", "partition", "account")  # errors shown next to their field


def _gres_options(choices: Choices) -> list[dict[str, Any]]:
    """The form's GRES choices: one option per partition, GRES and count (1 to the most)."""
    return [
        {"partition": part, "value": f"{name}:{n}", "label": f"{n} {name}"}
        for part, offered in choices.gres.items()
        for name, most in offered.items()
        for n in range(1, most + 1)
    ]


def allowed_partitions(
    site_partitions: Sequence[str], live: Mapping[str, PartitionInfo] | None
) -> dict[str, PartitionInfo | None]:
    """The site's whitelist, in its order, restricted to partitions the scheduler has (all
    of the whitelist, without live data, when the scheduler did not answer)."""
    if live is None:
        return {p: None for p in site_partitions}
    return {p: live[p] for p in site_partitions if p in live}


@dataclass(frozen=True)
class FormSettings:
    """The spawner's side of the form: the site's whitelist, profiles and limits."""

    partitions: Sequence[str]
    default_partition: str
    profiles: Sequence[Profile]
    max_cpus: int
    max_memory_mb: int
    max_walltime_s: int
    gres: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # partition → GRES → most


async def load_choices(view: SchedulerView, user: str, settings: FormSettings) -> Choices:
    """What ``user`` may ask for now: the site's settings ∩ the scheduler's partitions (cached,
    shared queries); the site's settings alone, with a note, when the scheduler is silent."""
    live, err = await view.safe(view.partitions(), None)
    assocs, err2 = await view.safe(view.associations(user), [])
    parts = allowed_partitions(settings.partitions, live)
    default = settings.default_partition
    default_part = default if default in parts else next(iter(parts), default)
    choices = Choices(
        profiles=tuple(settings.profiles),
        partitions=parts,
        default_partition=default_part,
        max_cpus=settings.max_cpus,
        max_memory_mb=settings.max_memory_mb,
        max_walltime_s=settings.max_walltime_s,
        accounts=tuple(sorted({a.account for a in assocs})),
        default_account=None,
        scheduler_error=err or err2,
        gres={p: dict(g) for p, g in settings.gres.items() if p in parts and g},
    )
    return without_impossible_profiles(choices)


def without_impossible_profiles(choices: Choices) -> Choices:
    """``choices`` without the profiles that could not start (a partition that is not offered,
    or a value over its partition's or the site's limits), each kept in ``hidden`` with the
    reason: the same checks as a request (:func:`validate_request`), so a profile on the form
    is one the hub accepts."""
    ok, hidden = [], []
    for p in choices.profiles:
        try:
            validate_request({"profile": p.name}, choices)
            ok.append(p)
        except FormError as exc:
            hidden.append((p.name, str(exc)))
    return replace(choices, profiles=tuple(ok), hidden=tuple(hidden))


def previous_request(user_options: Mapping[str, Any] | None, choices: Choices) -> ResourceRequest | None:
    """The last saved ``user_options`` as a request, if they are still valid (to pre-fill)."""
    if not user_options:
        return None
    try:
        return validate_request(user_options, choices)
    except FormError:
        return None
