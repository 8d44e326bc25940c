"""A site's settings for the sandfill hub: one short YAML file (plus a few environment variables).

A site never edits code: ``jupyterhub_config.py`` reads the file named by
``SANDFILL_HUB_SITE`` (or ``hub_config/site.yaml`` next to it when present), applies the
environment overrides of :data:`ENV_OVERRIDES`, validates everything into a frozen
:class:`SiteConfig` and hands it to :func:`sandfill.hub.config.apply_site`.

Durations and memory are read by :mod:`sandfill.units`, as everywhere in sandfill:
``"2:00"`` is two minutes, ``"02:00:00"`` or ``"2h"`` two hours, a bare number is minutes;
``4G`` is 4 GiB and a bare number MiB. In the model they are whole seconds and MiB.

A bad file raises :class:`SiteError` listing *every* problem, each with its key path, the
value and -- for a misspelt key -- a "did you mean". ``sandfill hub check SITE.yaml`` shows it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, get_origin

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator

from sandfill import units
from sandfill.schema import (
    GRES_NAME,
    SLURM_NAME,
    MemoryMiB,
    PositiveDuration,
    Problem,
    SchemaError,
    SlurmName,
    Strict,
    check_slurm_name,
    validate,
)
from sandfill.slurm.states import USER_NAME

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: a host name: DNS labels of either case, at most 253 characters
_HOSTNAME = re.compile(r"(?i)(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")
#: ``http(s)://host[:port]``: lower-case DNS labels (no IP address: it has no subdomains),
#: nothing after the port (no path, query, user or trailing ``/``)
_ORIGIN = re.compile(rf"https?://(?!\d+(?:\.\d+)*(?::|$)){_LABEL}(?:\.{_LABEL})*(?::(?P<port>\d{{1,5}}))?")


class SiteError(SchemaError):
    """The site file or environment is wrong; ``problems`` names every key and value."""

    kind = "site file"


def _text(value: Any) -> str:
    if isinstance(value, str) and any(ch in value for ch in "\n\r\0"):
        raise ValueError(f"{value!r} contains a line break or a NUL character")
    return value.strip() if isinstance(value, str) else value


def _pattern(regex: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and not regex.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _whole(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, str) and not value.strip().isdigit()):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _port(value: Any) -> Any:
    if not 1 <= int(_whole(value)) <= 65535:
        raise ValueError(f"{value!r} is not a TCP port (1-65535)")
    return value


def _origin(value: Any) -> Any:
    """A hub origin whose subdomains serve the users (``JupyterHub.subdomain_host``)."""
    match = _ORIGIN.fullmatch(value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match["port"] or 443) <= 65535:
        raise ValueError(
            f"{value!r} is not an origin such as 'https://hub.example.org' or 'http://localhost:8000' "
            "(http or https, a lower-case host name, an optional port, no path)"
        )
    return value


def _ip(value: Any) -> Any:
    """An IP address to listen on (``0.0.0.0``/``::``: every interface)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address such as '127.0.0.1' or '0.0.0.0'") from None
    return value


def _nonempty(value: Any) -> Any:
    if value == "":
        raise ValueError("is an empty line")
    return value


def _host(value: Any) -> Any:
    """A host name or an IP address that clients connect to (not ``0.0.0.0``)."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a host name or IP address") from None
        return value
    if ip.is_unspecified:
        raise ValueError(f"{value!r} is every interface, not an address to connect to")
    return value


#: an absolute path with no '..', whitespace or shell character (it reaches a batch script)
_PATH = re.compile(r"/(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9_.+/-]*")
#: ``http(s)://host:port[/path/]``: where the jobs reach the hub's API (``JupyterHub.hub_connect_url``)
_URL = re.compile(r"https?://(?P<host>[A-Za-z0-9.-]+):(?P<port>\d{1,5})(?:/[A-Za-z0-9_.~/-]*)?")
_FEATURE = r"[A-Za-z0-9_.-]+"
_GRES_SPEC = rf"{GRES_NAME.pattern}(?::{_FEATURE})?(?::\d{{1,4}})?"
_MAIL_TYPES = ("NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND", "STAGE_OUT",
               "TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS")
_HINTS = ("compute_bound", "memory_bound", "multithread", "nomultithread")


def _listed(words: tuple[str, ...]) -> re.Pattern[str]:
    one = "|".join(words)
    return re.compile(rf"(?:{one})(?:,(?:{one}))*")


def _is_memory(value: str) -> bool:
    try:
        units.parse_memory(value)
    except units.UnitError:
        return False
    return True


#: the ``#SBATCH`` options a site may add to a profile's or a partition's server jobs, each
#: with the values it takes (None: a flag, no value). Everything else -- above all what the
#: batch script sets itself (partition, CPUs, memory, time, output, export, chdir, job name)
#: and what would change who or where the job runs (--uid, --chdir, --get-user-env) -- is
#: refused. --account is the user's choice on the form, checked against their associations.
SBATCH_OPTIONS: dict[str, tuple[re.Pattern[str] | None, str]] = {
    "qos": (SLURM_NAME, "a QOS name"),
    "constraint": (re.compile(rf"{_FEATURE}(?:[&|,]{_FEATURE})*"), "node features joined by &, | or ,"),
    "gres": (re.compile(rf"{_GRES_SPEC}(?:,{_GRES_SPEC})*"), "name[:type][:count], comma-separated"),
    "licenses": (re.compile(rf"{_FEATURE}(?:@{_FEATURE})?(?::\d{{1,4}})?(?:,{_FEATURE}(?:@{_FEATURE})?(?::\d{{1,4}})?)*"),
                 "license[@server][:count], comma-separated"),
    "exclusive": (None, "no value"),
    "mail-type": (_listed(_MAIL_TYPES), f"comma-separated {', '.join(_MAIL_TYPES)}"),
    "reservation": (SLURM_NAME, "a reservation name"),
    "wckey": (SLURM_NAME, "a workload characterization key"),
    "nice": (re.compile(r"\d{1,7}"), "a whole number 0 or more"),
    "hint": (_listed(_HINTS), f"one of {', '.join(_HINTS)}"),
    "threads-per-core": (re.compile(r"[1-9]\d{0,2}"), "a whole number 1 or more"),
    "tmp": (re.compile(r"\S+"), "an amount of disk, e.g. 10G"),
}
_SBATCH_LINE = re.compile(r"--(?P<option>[a-z][a-z-]*)(?:=(?P<value>.*))?")


def _sbatch_option(value: Any) -> Any:
    """One ``--option[=value]`` an admin adds to server jobs: a whitelisted option (:data:`SBATCH_OPTIONS`)
    with a value of its type."""
    if not isinstance(value, str):
        return value
    match = _SBATCH_LINE.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an '--option=value' for an #SBATCH line")
    option, arg = match["option"], match["value"]
    if option not in SBATCH_OPTIONS:
        raise ValueError(f"{value!r}: --{option} is not an option a site may add (allowed: "
                         f"{', '.join('--' + o for o in SBATCH_OPTIONS)})")
    pattern, what = SBATCH_OPTIONS[option]
    bad = (arg is not None) if pattern is None else (arg is None or not pattern.fullmatch(arg))
    if not bad and option == "tmp":
        bad = not _is_memory(arg or "")
    if bad:
        raise ValueError(f"{value!r}: --{option} takes {what}")
    return value


def _url(value: Any) -> Any:
    match = _URL.fullmatch(value) if isinstance(value, str) else None
    try:
        ok = match is not None and 1 <= int(match["port"]) <= 65535 and _host(match["host"])
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{value!r} is not a URL such as 'http://10.0.0.5:8081' (http or https, a host, a port, "
                         "an optional path)")
    return value


Text = Annotated[str, BeforeValidator(_text)]
_NODE_ADDRESS = re.compile(r"[A-Za-z0-9_.:-]+")


def _node_addresses(value: Any) -> str | dict[str, str]:
    """``"slurm"`` (each node's NodeAddr in slurm.conf) or a map node name → host name or address."""
    if isinstance(value, str) and value.strip() == "slurm":
        return "slurm"
    if not isinstance(value, dict):
        raise ValueError(f"{value!r} is neither 'slurm' nor a map of node name -> address")
    out: dict[str, str] = {}
    for name, addr in value.items():
        check_slurm_name(name)
        if not isinstance(addr, str) or not _NODE_ADDRESS.fullmatch(addr.strip()):
            raise ValueError(f"{name}: {addr!r} is not a host name or address")
        out[name] = addr.strip()
    return out


NodeAddresses = Annotated[str | dict[str, str], PlainValidator(_node_addresses)]
Name = Annotated[str, _pattern(_NAME, "a valid name (letters, digits, '_', '.', '-')")]
UserName = Annotated[str, _pattern(USER_NAME, "a valid user name")]
Count = Annotated[int, BeforeValidator(_whole), Field(ge=1)]
Port = Annotated[int, BeforeValidator(_port)]
Walltime = PositiveDuration
Origin = Annotated[str, BeforeValidator(_text), AfterValidator(_origin)]
Url = Annotated[str, BeforeValidator(_text), AfterValidator(_url)]
AbsPath = Annotated[str, BeforeValidator(_text), _pattern(_PATH, "an absolute path (letters, digits, '_', '.', '+', '-', no '..')")]
#: one shell line of the site's prologue (admin-trusted: it runs as is in every job)
ShellLine = Annotated[str, BeforeValidator(_text), AfterValidator(_nonempty)]
SbatchOption = Annotated[str, BeforeValidator(_text), AfterValidator(_sbatch_option)]
GresName = Annotated[str, _pattern(GRES_NAME, "a GRES name (lower-case letters, digits, '_')")]
ListenIP = Annotated[str, BeforeValidator(_text), AfterValidator(_ip)]
Host = Annotated[str, BeforeValidator(_text), AfterValidator(_host)]


class Profile(Strict):
    """A choice on the spawn form, defined by the site. ``memory`` is MiB and ``walltime``
    seconds once validated; they are *written* as the site file writes them (``"4G"``,
    ``"2h"``, a :class:`~sandfill.units.Duration`): a bare number is MiB and minutes."""

    name: Name
    description: Text = ""
    cpus: Count
    memory: MemoryMiB  # MiB
    walltime: Walltime  # seconds
    partition: SlurmName | None = None  # None: the site's default_partition
    sbatch: tuple[SbatchOption, ...] = ()  # extra #SBATCH options of this profile's jobs (whitelisted)

    def label(self) -> str:
        return self.description or self.name


DEFAULT_PROFILES: tuple[Profile, ...] = (
    Profile(name="small", description="1 CPU, 2 GiB, 2 h, interactive tier", cpus=1, memory=2048, walltime="2h", partition="interactive"),
    Profile(name="medium", description="4 CPUs, 8 GiB, 4 h, interactive tier", cpus=4, memory=8192, walltime="4h", partition="interactive"),
    Profile(name="large", description="8 CPUs, 16 GiB, 4 h", cpus=8, memory=16384, walltime="4h"),
)


class PartitionSettings(Strict):
    """What a site adds to the server jobs of one partition: ``#SBATCH`` options (whitelisted,
    :data:`SBATCH_OPTIONS`) and the GRES a user may ask for there (name → the most one job
    may ask; the form offers 0 to that many on this partition only)."""

    sbatch: tuple[SbatchOption, ...] = ()
    gres: dict[GresName, Annotated[int, BeforeValidator(_whole), Field(ge=1, le=1024)]] = Field(default_factory=dict)


class SiteConfig(Strict):
    """Every setting of a site, typed: durations in seconds, memory in MiB."""

    # where the hub listens and where compute nodes reach it
    ip: Text = "127.0.0.1"
    port: Port = 8000
    hub_ip: Text = "127.0.0.1"
    hub_port: Port = 8081
    hub_connect_ip: Host = "127.0.0.1"
    # the whole URL the jobs reach the hub's API at (https, a port forwarded elsewhere); it
    # overrides hub_connect_ip and hub_port for the jobs. None: http://hub_connect_ip:hub_port
    hub_connect_url: Url | None = None
    proxy_api_port: Port = 8001
    base_url: Text = "/"
    # each user's server on a subdomain of this origin (``https://<user>.hub.example.org/``):
    # user servers cannot act as each other or as the hub. Needs wildcard DNS and a wildcard
    # certificate. None: one origin for all (only when every user is trusted)
    subdomain_host: Origin | None = None
    state_dir: Text = "/var/lib/sandfill/hub"
    # the sandfill service (the cluster's one Slurm view): where it listens (the proxy and
    # the server jobs reach it there), and the address compute nodes connect to
    service_ip: ListenIP = "127.0.0.1"
    service_port: Port | None = None  # None: a free port picked when the hub's config loads
    service_connect_ip: Host | None = None  # None: service_ip (needed when that is 0.0.0.0 or ::)
    # who may log in
    admin_users: tuple[UserName, ...] = ()
    allowed_users: tuple[UserName, ...] = ()
    allow_all: bool = False
    # Slurm
    slurm_conf: Text | None = None
    partitions: Annotated[tuple[SlurmName, ...], Field(min_length=1)] = ("interactive",)
    default_partition: SlurmName = "interactive"
    # where the notebook server listens on its node. None: its node's address toward the hub
    # (worked out in the job), never every interface
    server_ip: Text | None = None
    exec_host: Text | None = None  # every server job is reached at this one address (a gateway)
    # how the hub finds a server's node when node names do not resolve on the hub: "slurm"
    # (the node's NodeAddr in slurm.conf) or a map node name -> address. None: the node's name
    node_addresses: NodeAddresses | None = None
    # the jobs' Python environment (a venv or conda prefix on the shared filesystem): its bin
    # holds jupyterhub-singleuser, batchspawner-singleuser and dask. None: the hub's own
    python_env: AbsPath | None = None
    # shell lines run in every server job and every Dask worker job before the server or the
    # worker starts (``module load``, ``source``, ``conda activate``). Admin-trusted shell
    prologue: tuple[ShellLine, ...] = ()
    # per partition: extra #SBATCH options (whitelisted) and the GRES users may ask for
    partition_settings: dict[SlurmName, PartitionSettings] = Field(default_factory=dict)
    # limits of the form
    max_cpus: Count = 8
    max_memory: MemoryMiB = 32768
    max_walltime: Walltime = 8 * 3600
    profiles: tuple[Profile, ...] = DEFAULT_PROFILES
    # timings (seconds)
    start_timeout: Walltime = 900
    poll_interval: Walltime = 30
    walltime_warning: Walltime = 600
    cull_idle: Walltime = 3600
    cull_every: Walltime = 300


#: environment variable → site key; applied over the site file, before validation (a list
#: key takes a comma-separated value). The demo and the tests' hubs clear them.
ENV_OVERRIDES: dict[str, str] = {
    "SANDFILL_HUB_IP": "ip",
    "SANDFILL_HUB_PORT": "port",
    "SANDFILL_HUB_HUB_IP": "hub_ip",
    "SANDFILL_HUB_HUB_PORT": "hub_port",
    "SANDFILL_HUB_CONNECT_IP": "hub_connect_ip",
    "SANDFILL_HUB_PROXY_API_PORT": "proxy_api_port",
    "SANDFILL_HUB_BASE_URL": "base_url",
    "SANDFILL_HUB_SUBDOMAIN_HOST": "subdomain_host",
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


def default_site_file() -> Path | None:
    env = os.environ.get("SANDFILL_HUB_SITE")
    if env:
        return Path(env)
    here = Path(__file__).with_name("site.yaml")
    return here if here.exists() else None


def read_site_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The site file's mapping (not yet validated); :class:`SiteError` if it cannot be read."""
    p = Path(path)
    try:
        loaded = yaml.safe_load(p.read_text()) or {}
    except OSError as exc:
        raise SiteError([Problem("", f"cannot read the site file: {exc.strerror}")], str(p)) from None
    except yaml.YAMLError as exc:
        raise SiteError([Problem("", f"not valid YAML: {exc}")], str(p)) from None
    if not isinstance(loaded, dict):
        raise SiteError([Problem("", "the site file must be a mapping of settings")], str(p))
    return loaded


def load_site(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> SiteConfig:
    """Read the site file (if any), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    p = Path(path) if path else default_site_file()
    raw = read_site_file(p) if p is not None else {}
    for var, key in ENV_OVERRIDES.items():
        if environ.get(var):
            value: Any = environ[var]
            if get_origin(SiteConfig.model_fields[key].annotation) is tuple:
                value = [v.strip() for v in value.split(",") if v.strip()]
            raw[key] = value
    return site_from_dict(raw, source=str(p) if p else None)


def site_from_dict(raw: Mapping[str, Any], *, source: str | None = None) -> SiteConfig:
    """Validate a mapping of settings: every problem, then the checks across keys."""
    data = {k: v for k, v in raw.items() if v is not None}
    if data.get("profiles") == []:
        del data["profiles"]  # no profiles listed: the defaults
    site = validate(SiteConfig, data, source=source, error=SiteError)
    problems = cross_check(site)
    if problems:
        raise SiteError(problems, source)
    return site


def cross_check(site: SiteConfig) -> list[Problem]:
    """What no single key can say wrong: every profile within the limits, partitions known."""
    out: list[Problem] = []
    parts = ", ".join(site.partitions)
    if site.default_partition not in site.partitions:
        out.append(Problem("default_partition", f"{site.default_partition!r} is not in partitions ({parts})"))
    if site.service_connect_ip is None and ipaddress.ip_address(site.service_ip).is_unspecified:
        out.append(Problem("service_connect_ip", f"must be set when service_ip is {site.service_ip!r} (every "
                           "interface): the address compute nodes reach the sandfill service on"))
    if not site.base_url.startswith("/"):
        out.append(Problem("base_url", f"{site.base_url!r} must start with /"))
    seen: set[str] = set()
    for i, prof in enumerate(site.profiles):
        where = f"profiles.{i}"
        if prof.name in seen:
            out.append(Problem(f"{where}.name", f"{prof.name!r} is used by two profiles"))
        seen.add(prof.name)
        for key, value, limit, unit in (
            ("cpus", prof.cpus, site.max_cpus, ""),
            ("memory", prof.memory, site.max_memory, " MiB"),
            ("walltime", prof.walltime, site.max_walltime, " s"),
        ):
            if value > limit:
                out.append(Problem(f"{where}.{key}", f"{value}{unit} is above max_{key} ({limit}{unit})"))
        if prof.partition is not None and prof.partition not in site.partitions:
            out.append(Problem(f"{where}.partition", f"{prof.partition!r} is not in partitions ({parts})"))
    return out + _partition_problems(site)


def _partition_problems(site: SiteConfig) -> list[Problem]:
    """``partition_settings`` only for partitions offered; a partition whose users choose a
    GRES has no ``--gres`` of its own (the two lines would contradict each other)."""
    out: list[Problem] = []
    for name, extra in site.partition_settings.items():
        where = f"partition_settings.{name}"
        if name not in site.partitions:
            out.append(Problem(where, f"{name!r} is not in partitions ({', '.join(site.partitions)})"))
        if extra.gres and any(line.startswith("--gres=") for line in extra.sbatch):
            out.append(Problem(f"{where}.sbatch", "a --gres line contradicts this partition's gres choices; use one of them"))
    return out
