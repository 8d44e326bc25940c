"""sandfill: interactive Jupyter and elastic Dask on Slurm, fitted into the schedule's gaps."""

__version__ = "0.1.0"
