"""A site's settings for the sandfill hub: one short YAML file plus environment variables.

A site never edits code: ``jupyterhub_config.py`` reads the file named by
``SANDFILL_HUB_SITE`` (or ``hub_config/site.yaml`` next to it when present), then applies
the environment overrides listed in :data:`ENV_OVERRIDES`, validates everything and hands
the result to :func:`sandfill.hub.config.apply_site`.

Every error names the key and the bad value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from sandfill.hub.units import parse_memory_mb, parse_walltime

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


class SiteError(ValueError):
    """The site file or environment is wrong; the message names the key."""


@dataclass(frozen=True)
class Profile:
    """An admin-defined choice on the spawn form."""

    name: str
    description: str
    cpus: int
    memory_mb: int
    walltime_s: int
    partition: str | None = None


@dataclass(frozen=True)
class SiteConfig:
    # where the hub listens and where compute nodes reach it
    ip: str = "127.0.0.1"
    port: int = 8000
    hub_ip: str = "127.0.0.1"
    hub_port: int = 8081
    hub_connect_ip: str = "127.0.0.1"
    proxy_api_port: int = 8001
    base_url: str = "/"
    state_dir: str = "/var/lib/sandfill/hub"
    # who may log in
    admin_users: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()
    allow_all: bool = False
    # Slurm
    slurm_conf: str | None = None
    partitions: tuple[str, ...] = ("interactive",)
    default_partition: str = "interactive"
    server_ip: str = "0.0.0.0"
    exec_host: str | None = None  # every server job is reached at this address (devcluster)
    # limits of the form
    max_cpus: int = 8
    max_memory_mb: int = 32768
    max_walltime_s: int = 8 * 3600
    profiles: tuple[Profile, ...] = field(default_factory=tuple)
    # timings
    start_timeout: int = 900
    poll_interval: int = 30
    walltime_warning_s: int = 600
    cull_idle_s: int = 3600
    cull_every_s: int = 300


DEFAULT_PROFILES: tuple[Profile, ...] = (
    Profile("small", "1 CPU, 2 GB, 2 h, interactive tier", 1, 2048, 2 * 3600, "interactive"),
    Profile("medium", "4 CPUs, 8 GB, 4 h, interactive tier", 4, 8192, 4 * 3600, "interactive"),
    Profile("large", "8 CPUs, 16 GB, 4 h", 8, 16384, 4 * 3600, None),
)

#: environment variable → (site key, type); applied after the site file
ENV_OVERRIDES: dict[str, str] = {
    "SANDFILL_HUB_IP": "ip",
    "SANDFILL_HUB_PORT": "port",
    "SANDFILL_HUB_HUB_IP": "hub_ip",
    "SANDFILL_HUB_HUB_PORT": "hub_port",
    "SANDFILL_HUB_CONNECT_IP": "hub_connect_ip",
    "SANDFILL_HUB_PROXY_API_PORT": "proxy_api_port",
    "SANDFILL_HUB_BASE_URL": "base_url",
    "SANDFILL_HUB_STATE_DIR": "state_dir",
    "SANDFILL_HUB_ADMIN_USERS": "admin_users",
    "SANDFILL_HUB_ALLOWED_USERS": "allowed_users",
    "SANDFILL_HUB_PARTITIONS": "partitions",
    "SANDFILL_HUB_DEFAULT_PARTITION": "default_partition",
    "SANDFILL_HUB_SERVER_IP": "server_ip",
    "SANDFILL_HUB_EXEC_HOST": "exec_host",
    "SANDFILL_HUB_POLL_INTERVAL": "poll_interval",
    "SANDFILL_HUB_WALLTIME_WARNING": "walltime_warning",
    "SLURM_CONF": "slurm_conf",
}

_INT_KEYS = {"port", "hub_port", "proxy_api_port", "max_cpus", "start_timeout", "poll_interval"}
_LIST_KEYS = {"admin_users", "allowed_users", "partitions"}
_STR_KEYS = {"ip", "hub_ip", "hub_connect_ip", "base_url", "state_dir", "slurm_conf", "default_partition", "server_ip", "exec_host"}
_DURATION_KEYS = {"max_walltime": "max_walltime_s", "walltime_warning": "walltime_warning_s", "cull_idle": "cull_idle_s", "cull_every": "cull_every_s"}
_MEMORY_KEYS = {"max_memory": "max_memory_mb"}
KNOWN_KEYS = _INT_KEYS | _LIST_KEYS | _STR_KEYS | set(_DURATION_KEYS) | set(_MEMORY_KEYS) | {"allow_all", "profiles"}


def default_site_file() -> Path | None:
    env = os.environ.get("SANDFILL_HUB_SITE")
    if env:
        return Path(env)
    here = Path(__file__).with_name("site.yaml")
    return here if here.exists() else None


def load_site(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> SiteConfig:
    """Read the site file (if any), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    p = Path(path) if path else default_site_file()
    if p is not None:
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except OSError as exc:
            raise SiteError(f"cannot read the site file {p}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise SiteError(f"{p} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise SiteError(f"{p}: the site file must be a mapping of settings")
        raw.update(loaded)
    for var, key in ENV_OVERRIDES.items():
        if environ.get(var):
            raw[key] = environ[var]
    return site_from_dict(raw)


def site_from_dict(raw: Mapping[str, Any]) -> SiteConfig:
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise SiteError(f"unknown site setting(s): {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})")
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key in _INT_KEYS:
            kw[key] = _int(key, value)
        elif key in _LIST_KEYS:
            kw[key] = _names(key, value, _USER if key != "partitions" else _NAME)
        elif key in _STR_KEYS:
            kw[key] = _str(key, value)
        elif key in _DURATION_KEYS:
            kw[_DURATION_KEYS[key]] = _duration(key, value)
        elif key in _MEMORY_KEYS:
            kw[_MEMORY_KEYS[key]] = _memory(key, value)
        elif key == "allow_all":
            kw[key] = _bool(key, value)
    if "profiles" in raw and raw["profiles"] is not None:
        kw["profiles"] = _profiles(raw["profiles"])
    site = SiteConfig(**kw)
    if not site.profiles:
        site = _replace(site, profiles=DEFAULT_PROFILES)
    _check(site)
    return site


def _replace(site: SiteConfig, **kw: Any) -> SiteConfig:
    values = {f.name: getattr(site, f.name) for f in fields(site)}
    values.update(kw)
    return SiteConfig(**values)


def _check(site: SiteConfig) -> None:
    for key in ("port", "hub_port", "proxy_api_port"):
        v = getattr(site, key)
        if not 0 < v < 65536:
            raise SiteError(f"{key}: {v} is not a TCP port")
    if site.default_partition not in site.partitions:
        raise SiteError(
            f"default_partition: {site.default_partition!r} is not in partitions ({', '.join(site.partitions)})"
        )
    if site.max_cpus < 1:
        raise SiteError(f"max_cpus: {site.max_cpus} must be at least 1")
    for prof in site.profiles:
        where = f"profiles[{prof.name}]"
        if prof.cpus > site.max_cpus:
            raise SiteError(f"{where}.cpus: {prof.cpus} is above max_cpus ({site.max_cpus})")
        if prof.memory_mb > site.max_memory_mb:
            raise SiteError(f"{where}.memory: {prof.memory_mb} MB is above max_memory ({site.max_memory_mb} MB)")
        if prof.walltime_s > site.max_walltime_s:
            raise SiteError(f"{where}.walltime: {prof.walltime_s} s is above max_walltime ({site.max_walltime_s} s)")
        if prof.partition is not None and prof.partition not in site.partitions:
            raise SiteError(f"{where}.partition: {prof.partition!r} is not in partitions ({', '.join(site.partitions)})")
    names = [p.name for p in site.profiles]
    if len(set(names)) != len(names):
        raise SiteError(f"profiles: duplicate names in {names}")
    if not site.base_url.startswith("/"):
        raise SiteError(f"base_url: {site.base_url!r} must start with /")


def _int(key: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise SiteError(f"{key}: {value!r} is not a whole number") from None


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise SiteError(f"{key}: {value!r} is not true/false")


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise SiteError(f"{key}: {value!r} is not a string")
    text = str(value)
    if any(ch in text for ch in "\n\r\0"):
        raise SiteError(f"{key}: {value!r} contains a line break")
    return text.strip()


def _names(key: str, value: Any, pattern: re.Pattern[str]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise SiteError(f"{key}: {value!r} is not a list")
    out = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if not pattern.match(item):
            raise SiteError(f"{key}: {item!r} is not a valid name")
        out.append(item)
    return tuple(out)


def _duration(key: str, value: Any) -> int:
    try:
        return parse_walltime(value)
    except ValueError as exc:
        raise SiteError(f"{key}: {exc}") from None


def _memory(key: str, value: Any) -> int:
    try:
        return parse_memory_mb(value)
    except ValueError as exc:
        raise SiteError(f"{key}: {exc}") from None


def _profiles(value: Any) -> tuple[Profile, ...]:
    if not isinstance(value, list):
        raise SiteError("profiles: must be a list of {name, description, cpus, memory, walltime[, partition]}")
    out = []
    for i, item in enumerate(value):
        where = f"profiles[{i}]"
        if not isinstance(item, dict):
            raise SiteError(f"{where}: must be a mapping")
        extra = sorted(set(item) - {"name", "description", "cpus", "memory", "walltime", "partition"})
        if extra:
            raise SiteError(f"{where}: unknown key(s) {', '.join(extra)}")
        for req in ("name", "cpus", "memory", "walltime"):
            if req not in item:
                raise SiteError(f"{where}: missing {req!r}")
        name = str(item["name"])
        if not _NAME.match(name):
            raise SiteError(f"{where}.name: {name!r} is not a valid name")
        cpus = _int(f"{where}.cpus", item["cpus"])
        if cpus < 1:
            raise SiteError(f"{where}.cpus: {cpus} must be at least 1")
        part = item.get("partition")
        if part is not None and not _NAME.match(str(part)):
            raise SiteError(f"{where}.partition: {part!r} is not a valid name")
        out.append(
            Profile(
                name=name,
                description=_str(f"{where}.description", item.get("description", name)),
                cpus=cpus,
                memory_mb=_memory(f"{where}.memory", item["memory"]),
                walltime_s=_duration(f"{where}.walltime", item["walltime"]),
                partition=str(part) if part is not None else None,
            )
        )
    return tuple(out)
