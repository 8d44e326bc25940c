"""``python -m sandfill.hub.service``: the ``sandfill`` service, as the hub runs it.

JupyterHub passes ``JUPYTERHUB_SERVICE_URL`` (where to listen), ``JUPYTERHUB_SERVICE_PREFIX``
(``/services/sandfill/``), its API token and OAuth client; :func:`configure_services` adds
``SLURM_CONF``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.parse

from jupyterhub.services.auth import HubOAuth
from tornado.ioloop import PeriodicCallback

from sandfill.hub.service.app import SERVICE_NAME, ClusterView, make_app
from sandfill.slurm.client import SlurmClient
from sandfill.slurm.poller import COMMAND_TIMEOUT

EXPIRE_EVERY = 30.0  # seconds between two looks for jobs nobody asks about any more


async def serve() -> None:
    url = urllib.parse.urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    view = ClusterView(SlurmClient(os.environ.get("SLURM_CONF"), timeout=COMMAND_TIMEOUT))
    app = make_app(view, HubOAuth.instance(), prefix)
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    PeriodicCallback(view.expire, EXPIRE_EVERY * 1000).start()
    logging.getLogger("sandfill.hub.service").info("the sandfill service listens at %s%s", url.netloc, prefix)
    await asyncio.Event().wait()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:  # the hub stops its services with SIGINT
        pass


if __name__ == "__main__":
    main()
