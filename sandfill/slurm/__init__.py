"""The shared Slurm layer: a typed async client and one batched queue poller per process."""

from sandfill.slurm.client import SlurmClient
from sandfill.slurm.commands import SlurmCommandError
from sandfill.slurm.parse import GONE, UNKNOWN, JobStatus, format_duration, parse_duration
from sandfill.slurm.poller import QueuePoller

__all__ = [
    "GONE",
    "UNKNOWN",
    "JobStatus",
    "QueuePoller",
    "SlurmClient",
    "SlurmCommandError",
    "format_duration",
    "parse_duration",
]
