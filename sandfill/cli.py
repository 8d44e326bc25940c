"""The ``sandfill`` command line.

Each part of sandfill registers its own subcommands through the ``sandfill.cli`` entry-point
group: an entry point names a ``register(subparsers)`` function that adds one subcommand whose
parser sets ``func`` (called with the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from sandfill import __version__


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandfill",
        description="Interactive Jupyter and elastic Dask on Slurm.",
    )
    parser.add_argument("--version", action="version", version=f"sandfill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group="sandfill.cli"), key=lambda e: e.name):
        ep.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CLIError as exc:
        print(f"sandfill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # `python -m sandfill.cli`: run the imported module's main, so that CLIError raised by the
    # parts (which import sandfill.cli) is the class main() catches
    from sandfill.cli import main as _main

    sys.exit(_main())
