"""sandfill's JupyterHub configuration.

A site adapts it without editing code: put its settings in a short YAML file named by
``SANDFILL_HUB_SITE`` (see ``site.example.yaml`` beside this file) and/or set the environment
variables listed in ``sandfill.hub.site.ENV_OVERRIDES`` (``SANDFILL_HUB_CONNECT_IP``,
``SLURM_CONF``, ...). The devcluster demo uses this same file with its own site values.

    jupyterhub -f $(python -c 'import sandfill.hub, os; print(os.path.dirname(sandfill.hub.__file__))')/jupyterhub_config.py
"""

from sandfill.hub.config import apply_site
from sandfill.hub.service.config import configure_services
from sandfill.hub.site import load_site

c = get_config()  # type: ignore[name-defined]  # noqa: F821
apply_site(c, load_site())
configure_services(c, load_site())  # the sandfill service (one Slurm view) and its roles
