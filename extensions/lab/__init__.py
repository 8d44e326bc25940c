"""sandfill's JupyterLab extension: the server part (REST API over the cluster manager, and
the server job's walltime API) and the prebuilt front end (``labextension/``, built from
``extensions/labextension``: the Backfill Dask panel and the walltime warning)."""

from __future__ import annotations

from typing import Any


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "sandfill-labextension"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "sandfill.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from sandfill.lab.handlers import setup_handlers
    from sandfill.lab.manager import ClusterManager
    from sandfill.lab.walltime import setup_walltime

    manager = ClusterManager(base_url=serverapp.base_url)
    setup_handlers(serverapp.web_app, manager)  # (it keeps the manager in the app settings)
    setup_walltime(serverapp)  # the server job's walltime: <base_url>/sandfill/walltime
    serverapp.log.info("sandfill: backfill Dask cluster API at %ssandfill/", serverapp.base_url)


async def _stop_extension(serverapp: Any) -> None:
    manager = serverapp.web_app.settings.get("sandfill_manager")
    if manager is not None:
        await manager.close()


_unload_jupyter_server_extension = _stop_extension
