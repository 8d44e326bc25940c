"""``sandfill demo``: the devcluster and the hub on 127.0.0.1, with demo accounts.

    sandfill demo [--port 8000] [--state-dir /var/lib/sandfill/demo]   # Ctrl-C stops everything
    sandfill demo --clean                                               # stop it, remove the accounts

The state directory holds ``devcluster/`` (Slurm), ``hub/`` (database, cookie secret),
``site.yaml`` (the demo's site values), ``hub.log`` and ``demo-logins.txt`` (mode 600).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

from sandfill.cli import CLIError
from sandfill.dev.accounts import AccountError, create_accounts, remove_accounts
from sandfill.dev.devcluster import DevCluster, DevClusterError
from sandfill.dev.hubprocess import HubError, HubProcess, stop_recorded_hub
from sandfill.files import private_dir, write_private

DEMO_USERS = ("sfdemo-ada", "sfdemo-grace")


def default_demo_dir() -> Path:
    return Path(os.environ.get("SANDFILL_DEMO_DIR", "/var/lib/sandfill/demo"))


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "demo",
        help="boot the devcluster and the hub on 127.0.0.1 with demo logins",
        description="Start a real Slurm devcluster and sandfill's JupyterHub on 127.0.0.1, create demo "
        "accounts and print the URL and logins. Ctrl-C stops everything.",
    )
    p.add_argument("--port", type=int, default=8000, help="the hub's port on 127.0.0.1 (default 8000)")
    p.add_argument("--state-dir", default=None, help=f"where the demo keeps everything (default {default_demo_dir()})")
    p.add_argument("--clean", action="store_true", help="stop the demo and remove the demo accounts")
    p.set_defaults(func=run)


def demo_site(state: Path, cluster: DevCluster, port: int, users: list[str]) -> dict[str, Any]:
    """The demo's site values: the same config a site uses, pointed at the devcluster."""
    return {
        "ip": "127.0.0.1",
        "port": port,
        "hub_ip": "127.0.0.1",
        "hub_connect_ip": "127.0.0.1",
        "state_dir": str(state / "hub"),
        "allowed_users": users,
        "slurm_conf": str(cluster.slurm_conf),
        "partitions": ["interactive", "burst", "batch"],
        "default_partition": "interactive",
        "node_addresses": "slurm",  # node1… do not resolve: their NodeAddr in slurm.conf
        "max_cpus": 8,
        "max_memory": "8G",
        "max_walltime": "08:00:00",
        "poll_interval": "10s",  # a bare number is minutes, as in Slurm
        "profiles": [
            {"name": "small", "description": "1 CPU, 1 GB, 2 h, interactive tier", "cpus": 1, "memory": "1G", "walltime": "02:00:00", "partition": "interactive"},
            {"name": "medium", "description": "4 CPUs, 4 GB, 4 h, interactive tier", "cpus": 4, "memory": "4G", "walltime": "04:00:00", "partition": "interactive"},
            {"name": "large", "description": "8 CPUs, 8 GB, 1 h, burst tier", "cpus": 8, "memory": "8G", "walltime": "01:00:00", "partition": "burst"},
        ],
    }


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _prepare(state: Path, port: int) -> None:
    """Check what the demo needs (root, a free port, a state dir the job users can reach)."""
    if os.geteuid() != 0:
        raise CLIError("the demo needs root (it runs Slurm and creates demo accounts): run `sudo make demo`")
    if not 0 < port < 65536:
        raise CLIError(f"--port: {port} is not a TCP port")
    if not _port_free(port):
        raise CLIError(f"port {port} on 127.0.0.1 is in use: pick another with --port")
    private_dir(state, 0o755)  # ours, not a symlink; the jobs read slurm.conf inside it
    for parent in state.parents:
        if parent.stat().st_mode & 0o001 == 0:
            raise CLIError(f"{parent} is not traversable by other users; the demo users' jobs need it (--state-dir)")


def _announce(state: Path, hub: HubProcess, cluster: DevCluster, logins: dict[str, str]) -> None:
    """Print the hub's address and the logins, and save them (private) in the state dir."""
    logins_file = write_private(
        state / "demo-logins.txt",
        f"URL: {hub.url}/\n" + "".join(f"user: {u}  password: {p}\n" for u, p in sorted(logins.items())),
    )
    print(f"\nsandfill hub: {hub.url}/   (open {hub.url}/hub/login)")
    print(f"each user's server is on a subdomain of its own, e.g. {hub.user_url(sorted(logins)[0])}")
    print("  (Chromium and Firefox resolve *.localhost to this machine; an SSH tunnel to the port works too)")
    for user, password in sorted(logins.items()):
        print(f"  login: {user:14s} password: {password}")
    print(f"logins saved in {logins_file}; hub log: {hub.log_file}")
    print(f"Slurm: export SLURM_CONF={cluster.slurm_conf}")
    print("Ctrl-C stops the hub and the devcluster; `make demo-clean` also removes the demo accounts.", flush=True)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    state = Path(args.state_dir or default_demo_dir()).absolute()
    if args.clean:
        return clean(state)
    _prepare(state, args.port)
    cluster = DevCluster(state / "devcluster")
    hub: HubProcess | None = None
    # from here on, Ctrl-C, SIGTERM or SIGHUP at any moment (the boot included) stops
    # everything started so far: the devcluster's daemons and jobs, the hub and what it ran
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        try:
            cluster.up()
            logins = create_accounts(DEMO_USERS)
        except (DevClusterError, AccountError) as exc:
            raise CLIError(str(exc)) from None
        write_private(state / "accounts.json", json.dumps(sorted(logins)), 0o644)
        cluster.add_users(logins)

        hub = HubProcess(state, demo_site(state, cluster, args.port, sorted(logins)))
        try:
            hub.start()
        except HubError as exc:
            raise CLIError(str(exc)) from None
        _announce(state, hub, cluster, logins)
        assert hub.proc is not None
        code = hub.proc.wait()
        print(f"the hub exited (status {code}); its log ends:\n{hub.log_tail()}")
    except KeyboardInterrupt:
        print("\nstopping…")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if hub is not None:
            hub.stop()
        cluster.down()
    return 0


def clean(state: Path) -> int:
    if stop_recorded_hub(state):
        print("hub stopped")
    cluster = DevCluster(state / "devcluster")
    if cluster.daemons():
        cluster.down()
    try:
        names = json.loads((state / "accounts.json").read_text())
    except (OSError, ValueError):
        names = list(DEMO_USERS)
    removed = remove_accounts(names)
    print(f"removed demo accounts: {', '.join(removed) or '(none)'}")
    for name in ("demo-logins.txt", "accounts.json"):
        (state / name).unlink(missing_ok=True)
    return 0
