"""``sandfill demo``: boot the devcluster and show the main job.

Until the hub is wired in, the demo submits a multi-node job and shows it run."""

from __future__ import annotations

import argparse
import time

from sandfill.cli import CLIError
from sandfill.devcluster import DevCluster, DevClusterError, default_state_dir
from sandfill.slurm import SlurmClient
from sandfill.testing import wait_until


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("demo", help="boot the devcluster and run the demo")
    p.add_argument("--state-dir", default=None, help=f"devcluster state directory (default {default_state_dir()})")
    p.add_argument("--clean", action="store_true", help="stop the demo and remove what it created")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cluster = DevCluster(args.state_dir)
    if args.clean:
        cluster.down()
        return 0
    try:
        cluster.up()
    except DevClusterError as exc:
        raise CLIError(str(exc)) from None
    client = SlurmClient(cluster.slurm_conf)
    script = "#!/bin/sh\nsrun --ntasks-per-node=1 sh -c 'echo task $SLURM_PROCID on $SLURMD_NODENAME'\n"
    out = cluster.layout.root / "demo-%j.out"
    jid = client.submit_sync(script, ["-N", "2", "--ntasks-per-node=1", "-t", "1", "-J", "sandfill-demo", "-o", str(out)])
    print(f"submitted 2-node job {jid}")
    t0 = time.monotonic()
    st = wait_until("the demo job to end", lambda: (s := client.squeue_sync([jid]).get(jid)) and s.ended and s, timeout=120)
    print(f"job {jid} {st.state} on {st.nodes} after {time.monotonic() - t0:.1f} s; its output:")
    print(out.with_name(f"demo-{jid}.out").read_text(), end="")
    print(f"\nthe devcluster keeps running; use it with:\n  export SLURM_CONF={cluster.slurm_conf}\nstop it with: sandfill devcluster down")
    return 0
