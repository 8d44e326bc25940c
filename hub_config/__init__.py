"""sandfill's JupyterHub deployment: the spawner, its form, pages and configuration.

``sandfill.hub.BackfillSlurmSpawner`` is registered as the ``sandfill`` entry point of
``jupyterhub.spawners``; ``hub_config/jupyterhub_config.py`` is the hub's config file.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BackfillSlurmSpawner"]


def __getattr__(name: str) -> Any:
    # lazy: importing the spawner imports JupyterHub and batchspawner
    if name == "BackfillSlurmSpawner":
        from sandfill.hub.spawner import BackfillSlurmSpawner

        return BackfillSlurmSpawner
    raise AttributeError(name)
