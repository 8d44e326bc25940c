"""The embedded devcluster: a real multi-node Slurm on loopback (``sandfill devcluster``)."""

from sandfill.dev.devcluster.cluster import DevCluster, DevClusterError, default_state_dir

__all__ = ["DevCluster", "DevClusterError", "default_state_dir"]
