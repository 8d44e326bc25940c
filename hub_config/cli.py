"""``sandfill hub check SITE.yaml [--json]``: validate a hub site file and print the settings it
resolves to, as ``sandfill policy check`` does for a policy.

Registered through the ``sandfill.cli`` entry point group (``hub = "sandfill.hub.cli:register"``).
Durations are shown as Slurm writes them and in words (``02:00:00 (2 hours)``), memory as
``4G (4 GiB)``; ``--json`` prints the same settings as JSON with durations in seconds and
memory in MiB. A bad file exits with status 2 and lists every problem, naming key and value.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sandfill import units
from sandfill.hub.site import Profile, SiteConfig, SiteError, load_site
from sandfill.schema import unit_of


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("hub", help="the JupyterHub deployment: check a site file")
    sub = p.add_subparsers(dest="hub_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    c = sub.add_parser(
        "check",
        help="validate a hub site file and print the settings it resolves to (exit 0 valid, 2 invalid)",
    )
    c.add_argument("file", help="site YAML (see hub_config/site.example.yaml)")
    c.add_argument("--json", action="store_true", help="print the settings as JSON (durations in seconds, memory in MiB)")
    c.add_argument("--env", action="store_true", help="apply the SANDFILL_HUB_* / SLURM_CONF overrides of this environment")
    c.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        site = load_site(args.file, environ=None if args.env else {})
    except SiteError as exc:
        print(f"{args.file}: INVALID ({len(exc.problems)} problem(s))", file=sys.stderr)
        for problem in exc.problems:
            print(f"  error: {problem}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(site.model_dump(mode="json"), indent=2))
        return 0
    print(f"{args.file}: OK ({len(site.profiles)} profile(s), partitions {', '.join(site.partitions)})")
    for line in describe_site(site):
        print(f"  {line}")
    for line in warnings(site):
        print(f"  warning: {line}", file=sys.stderr)
    return 0


def warnings(site: SiteConfig) -> list[str]:
    """What is valid but unsafe for a site whose users do not trust each other."""
    out = []
    if site.subdomain_host is None:
        out.append("subdomain_host is not set: every user's server shares the hub's origin, so a "
                   "page one user serves runs with the rights of whoever opens it "
                   "(set it to e.g. https://hub.example.org with wildcard DNS; docs/security.md)")
    return out


def describe_site(site: SiteConfig) -> list[str]:
    """The resolved settings, one line each, with durations and memory in words."""
    lines = []
    for key, value in site.model_dump(exclude={"profiles"}).items():
        lines.append(f"{key}: {_show(key, value)}")
    lines.append("profiles:")
    lines.extend(f"  {_profile(p)}" for p in site.profiles)
    return lines


def _show(key: str, value: Any, model: type[SiteConfig] | type[Profile] = SiteConfig) -> str:
    unit = unit_of(model.model_fields[key])
    if unit == "duration":
        return f"{units.format_duration(value)} ({units.describe_duration(value)})"
    if unit == "memory":
        return f"{units.format_memory(value)} ({units.describe_memory(value)})"
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value)) or "(none)"
    return "(not set)" if value is None else str(value)


def _profile(p: Profile) -> str:
    where = p.partition or "default partition"
    return (
        f"{p.name}: {p.cpus} CPU{'s' if p.cpus != 1 else ''}, {_show('memory', p.memory, Profile)}, "
        f"{_show('walltime', p.walltime, Profile)} on {where} -- {p.label()}"
    )
