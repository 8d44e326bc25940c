"""Backfill Dask clusters on Slurm: ``BackfillSLURMCluster``."""

from sandfill.dask import config as _config  # noqa: F401  (registers the dask.config defaults)
from sandfill.dask.cluster import BackfillSLURMCluster
from sandfill.dask.connect import connect, view
from sandfill.dask.job import BackfillSLURMJob
from sandfill.dask.model import WorkerJob

__all__ = ["BackfillSLURMCluster", "BackfillSLURMJob", "WorkerJob", "connect", "view"]
