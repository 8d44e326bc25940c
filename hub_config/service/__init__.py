"""The ``sandfill`` JupyterHub service: one Slurm view for the whole cluster (see :mod:`.app`)."""
