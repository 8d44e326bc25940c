"""The shared Slurm layer: the only code that builds Slurm argv or parses Slurm output.

One module per Slurm command (:mod:`.squeue`, :mod:`.sacct`, :mod:`.sinfo`, :mod:`.sbatch`,
:mod:`.scancel`, :mod:`.scontrol`, :mod:`.sacctmgr`, :mod:`.sdiag`) holds that command's argv
and its parser side by side; :mod:`.commands` runs them (:class:`Runner`, ``wait_until``);
:class:`SlurmClient` is the typed async client on one Runner; :class:`QueuePoller` the one
batched queue poller per process; :mod:`.view` caches the hub's schedule questions.
"""

from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import Runner, SlurmCommandError
from sandfill.slurm.poller import QueuePoller
from sandfill.slurm.states import GONE, UNKNOWN, JobStatus

__all__ = [
    "GONE",
    "UNKNOWN",
    "JobStatus",
    "QueuePoller",
    "Runner",
    "SlurmClient",
    "SlurmCommandError",
]
