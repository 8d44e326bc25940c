"""The spawner's settings: every option of :class:`~sandfill.hub.spawner.BackfillSlurmSpawner`
as a traitlet with its help text (``c.BackfillSlurmSpawner.<name>``), normally filled from the
site file by :func:`sandfill.hub.config.apply_site`.

Durations and memory are read by :mod:`sandfill.units` (see :mod:`sandfill.hub.traits`):
``"2:00"`` is two minutes, a bare number minutes or MiB, as in Slurm.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from sandfill.hub.script import DEFAULT_TEMPLATE
from sandfill.hub.site import DEFAULT_PROFILES
from sandfill.hub.traits import Memory, Profiles, SlurmNames, Walltime


class SpawnerSettings(LoggingConfigurable):
    """The configurable part of the spawner (a mixin: the spawner inherits these traits)."""

    slurm_conf = Unicode(
        help="""Path of the cluster's slurm.conf, passed as SLURM_CONF to every Slurm command
        and to the server job. Empty: the environment's SLURM_CONF, else Slurm's default.""",
    ).tag(config=True)

    @default("slurm_conf")
    def _slurm_conf_default(self) -> str:
        return os.environ.get("SLURM_CONF", "")

    profiles = Profiles(
        list(DEFAULT_PROFILES),
        help="""Profiles offered on the form: site-file profiles (sandfill.hub.site.Profile), or
        dicts with name, description, cpus, memory (e.g. "4G"), walltime (Slurm's syntax,
        e.g. "02:00:00" or "2h"; "2:00" is two minutes) and optionally partition (default:
        ``default_partition``). The first one is preselected.""",
    ).tag(config=True)

    partitions = SlurmNames(
        ["interactive"],
        help="""Partitions users may choose (a whitelist, in display order). Partitions the
        scheduler does not have are hidden; anything else submitted is rejected.""",
    ).tag(config=True)

    default_partition = Unicode(
        "interactive",
        help="Partition used when neither the form nor the profile names one (the interactive tier).",
    ).tag(config=True)

    max_cpus = Integer(8, min=1, help="Most CPUs one server may ask for (also capped by the partition's nodes).").tag(config=True)
    max_memory = Memory(
        "32G", help="Most memory one server may ask for, e.g. 32G; a bare number is MiB (also capped by the nodes)."
    ).tag(config=True)
    max_walltime = Walltime(
        "08:00:00",
        help="""Longest walltime one server may ask for, in Slurm's syntax ("08:00:00", "8h";
        a bare number is minutes). Also capped by the partition's MaxTime.""",
    ).tag(config=True)

    exec_host = Unicode(
        "",
        help="""Address at which the hub reaches every server job, whatever node it runs on.
        Empty: the job's batch host (mapped through ``exec_host_map``, or slurm.conf's
        ``NodeAddr`` with ``exec_host_from_slurm``).""",
    ).tag(config=True)

    exec_host_map = Dict(
        Unicode(),
        help="Map Slurm node names to addresses the hub can reach, e.g. {'node1': '10.0.0.11'}.",
    ).tag(config=True)

    exec_host_from_slurm = Bool(
        False,
        help="""Reach a server at its node's ``NodeAddr`` as slurm.conf declares it (for sites
        whose node names do not resolve on the hub). ``exec_host_map`` entries come first.""",
    ).tag(config=True)

    bind_node_address = Bool(
        True,
        help="""The server listens on its node's address toward the hub (worked out in the job:
        the local address of the node's route to the hub's API, ``python -m sandfill.net``),
        not on every interface. False: it listens on ``ip``.""",
    ).tag(config=True)

    job_output = Unicode(
        "{home}/sandfill-jupyter-%j.log",
        help="""The job's output file ({home} is the user's home, %j the job id). The user
        reads its tail from the hub page, and it is shown when a job ends.""",
    ).tag(config=True)

    script_template = Unicode(
        DEFAULT_TEMPLATE,
        help="""Jinja2 template of the batch script. It sees only the fields of
        sandfill.hub.script.ScriptContext (typed, validated values), never raw form input.""",
    ).tag(config=True)

    script_prologue = Unicode(
        "",
        help="Shell lines run in the job before the server starts (site-defined, e.g. 'module load python').",
    ).tag(config=True)

    extra_directives = List(
        Unicode(),
        help="Extra '#SBATCH --option=value' lines (site-defined), e.g. ['#SBATCH --qos=interactive'].",
    ).tag(config=True)

    partition_sbatch = Dict(
        List(Unicode()),
        help="""Extra #SBATCH options per partition (site-defined, whitelisted by the site file's
        partition_settings), e.g. {'gpu': ['--constraint=a100']}; a profile's own options
        (Profile.sbatch) follow them.""",
    ).tag(config=True)

    partition_gres = Dict(
        Dict(Integer()),
        help="""The GRES users may ask for per partition: name → the most one server may ask,
        e.g. {'gpu': {'gpu': 2}}. The form offers 0 to that many on that partition only and the
        request becomes '#SBATCH --gres=gpu:N'; any other partition takes no GRES.""",
    ).tag(config=True)

    submit_prefix = List(
        Unicode(),
        default_value=["sudo", "-E", "-u", "{username}"],
        help="""argv prefix for sbatch so the job is submitted as the user (no shell is
        involved; {username} is replaced). sudo resets PATH: the script sets PATH itself.
        The command gets only the job's variables, PATH and the locale (``-E`` keeps
        exactly those), never the rest of the hub's environment.""",
    ).tag(config=True)

    submit_timeout = Float(
        30.0,
        min=1,
        max=600,
        help="""Seconds (1 to 600) one sbatch may take. After a timeout the hub looks for the
        job in the queue (it may have been queued) and adopts it, so no job is left behind.""",
    ).tag(config=True)

    cancel_timeout = Float(
        20.0,
        min=1,
        max=300,
        help="""Seconds (1 to 300) one scancel or queue query of the hub may take.""",
    ).tag(config=True)

    cancel_retry_interval = Float(
        5.0,
        min=0.1,
        max=300,
        help="""Seconds (0.1 to 300) before the hub tries again to cancel a server job whose
        scancel failed (doubling each time, at most a minute apart). Until it is cancelled,
        the job stays in the spawner's state and the user cannot start another server.""",
    ).tag(config=True)

    cancel_retry_for = Float(
        600.0,
        min=1,
        max=86400,
        help="""Seconds (1 to 86400) the background retries of a failed cancel go on; after
        that the hub tries again at the user's next start and after a hub restart.""",
    ).tag(config=True)

    lookup_timeout = Float(
        5.0,
        min=0.1,
        max=120,
        help="""Seconds (0.1 to 120) a user lookup or a read of a job log may take; both run
        off the hub's event loop, so a slow name service or a hung home directory delays only
        that user's request.""",
    ).tag(config=True)

    singleuser_bin_dir = Unicode(
        help="Directory holding jupyterhub-singleuser and batchspawner-singleuser (default: this Python's bin).",
    ).tag(config=True)

    @default("singleuser_bin_dir")
    def _bin_default(self) -> str:
        # resolved: a checkout's `.venv` may be a link to a venv outside it (see the Makefile),
        # and the users' jobs cannot pass through a 0700 home directory to follow it
        return str(Path(sys.executable).parent.resolve())

    walltime_warning = Walltime(
        "10:00",
        help="""How long before the walltime ends the server warns the user (a JupyterLab
        notification from sandfill's walltime extension, and a log line). Slurm's syntax:
        "10:00" or "10m" is ten minutes.""",
    ).tag(config=True)

    lab_args = List(
        Unicode(),
        ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        help="""Extra arguments for the single-user server the hub starts. By default JupyterLab
        neither asks to fetch news nor checks for updates: compute nodes often have no way
        out, and a first session should not open on a popup.""",
    ).tag(config=True)

    log_tail_bytes = Integer(8192, help="How much of the end of the job's log the hub shows.").tag(config=True)

    pending_refresh = Float(
        2.0,
        min=0.1,
        max=60,
        help="Seconds (0.1 to 60) between updates of the pending page when nothing changed (estimates, position).",
    ).tag(config=True)

