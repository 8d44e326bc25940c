"""Submitting the server job as the user: the account lookup (off the hub's loop), the
batch script, and the environment of ``sudo … sbatch`` (a whitelist: the user can read the
environment of the sbatch they run, in ``/proc/PID/environ``, and the hub's holds its
secrets). A mixin of :class:`~sandfill.hub.spawner.BackfillSlurmSpawner`."""

from __future__ import annotations

import os
import pwd
import re
from typing import Any

from sandfill.hub.form import ResourceRequest
from sandfill.hub.joblog import off_loop
from sandfill.hub.script import build_context, render_script
from sandfill.slurm import SlurmClient
from sandfill.slurm.states import is_user_name

_HOME = re.compile(r"/[A-Za-z0-9_./-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: the hub's secrets: never in the environment of anything run as a user
HUB_SECRETS = frozenset({
    "CONFIGPROXY_AUTH_TOKEN", "JUPYTERHUB_CRYPT_KEY", "JPY_COOKIE_SECRET", "JUPYTERHUB_COOKIE_SECRET",
})
_SBATCH_KEEP = ("LANG", "LC_ALL")
#: the site's prologue for the user's Dask worker jobs: dask.config's
#: ``jobqueue.sandfill.site-prologue`` (a Python list literal, as dask reads DASK_* variables),
#: set in the server job's environment, so every kernel's clusters run it (sandfill.dask.job)
SITE_PROLOGUE_ENV = "DASK_JOBQUEUE__SANDFILL__SITE_PROLOGUE"


class SpawnFailed(RuntimeError):
    """The job ended before the server came up; the message says why (Slurm's state and
    reason and the tail of the job's log)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


class SubmitAsUser:
    """The spawner's submission helpers (they read the spawner's settings and JupyterHub's
    ``user``, ``get_env`` and ``get_args``)."""

    _pwent: pwd.struct_passwd | None = None
    user: Any

    def _client(self, as_user: bool) -> SlurmClient:
        if not as_user:
            return SlurmClient(self.slurm_conf or None)
        prefix = [p.replace("{username}", self._username()) for p in self.submit_prefix]
        client = SlurmClient(self.slurm_conf or None, prefix=prefix, timeout=self.submit_timeout)
        # exactly the whitelist, not the hub's environment plus it: the user can read the
        # environment of the sbatch they run (/proc/PID/environ), and the hub's holds its
        # secrets (proxy token, crypt key, cookie secret)
        client.runner.env = self._sbatch_env()
        return client

    def _username(self) -> str:
        name = self.user.name
        if not is_user_name(name):
            raise SpawnFailed(f"user name {name!r} cannot be used as a Slurm user")
        return name

    async def _home(self) -> str:
        """The user's home, looked up off the hub's loop and bounded (a slow name service
        must not freeze the hub); kept for :meth:`user_env`."""
        try:
            entry = await off_loop(f"looking up user {self.user.name!r}", pwd.getpwnam, self._username(),
                                   timeout=self.lookup_timeout)
        except KeyError:
            raise SpawnFailed(f"user {self.user.name!r} has no account on this machine") from None
        except TimeoutError as exc:
            raise SpawnFailed(f"{exc}; try again in a moment") from None
        if not _HOME.fullmatch(entry.pw_dir):
            raise SpawnFailed(f"home directory {entry.pw_dir!r} cannot be used in a batch script")
        self._pwent = entry
        return str(entry.pw_dir)

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        """USER, HOME and SHELL from the account looked up by :meth:`_home` (batchspawner's
        own calls getpwnam on the hub's loop, twice)."""
        env["USER"] = self.user.name
        if self._pwent is not None:
            env["HOME"], env["SHELL"] = self._pwent.pw_dir, self._pwent.pw_shell
        return env

    def _submit_env(self) -> dict[str, str]:
        """What the server job gets (sbatch ``--export`` names exactly these): JupyterHub's
        and batchspawner's variables for this server, never a hub secret (even if a site
        lists one in ``env_keep`` or ``environment``)."""
        env = {k: v for k, v in self.get_env().items() if _ENV_NAME.fullmatch(k) and k not in HUB_SECRETS}
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        env["SANDFILL_WALLTIME_WARNING"] = str(self.walltime_warning.seconds)  # seconds, for sandfill.lab
        env["SLURM_UMASK"] = "0077"  # the job's log (made by slurmstepd) and files: private
        if self.script_prologue:
            env[SITE_PROLOGUE_ENV] = repr(self.script_prologue.splitlines())
        return env

    def _sbatch_env(self) -> dict[str, str]:
        """The whole environment of ``sudo … sbatch``: the job's variables plus PATH and the
        locale, nothing else of the hub's."""
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
        env.update({k: os.environ[k] for k in _SBATCH_KEEP if k in os.environ})
        env.update(self._submit_env())
        return env

    def site_directives(self, request: ResourceRequest) -> list[str]:
        """The site's #SBATCH lines for ``request``: the site-wide ones, then its partition's,
        then its profile's (the site file validated each option against its whitelist)."""
        profile = next((p for p in self.profiles if p.name == request.profile), None)
        options = [*self.partition_sbatch.get(request.partition, ()), *(profile.sbatch if profile else ())]
        return [*self.extra_directives, *(f"#SBATCH {option}" for option in options)]

    def render_script(self, request: ResourceRequest, home: str) -> str:
        output = self.job_output.replace("{home}", home)
        bindir = self.singleuser_bin_dir
        command = [
            os.path.join(bindir, "batchspawner-singleuser"),
            os.path.join(bindir, "jupyterhub-singleuser"),
            *self.get_args(),
            *self.lab_args,
        ]
        ctx = build_context(
            request,
            username=self._username(),
            home=home,
            output=output,
            env=self._submit_env(),
            path=f"{bindir}:/usr/local/bin:/usr/bin:/bin",
            command=command,
            extra_directives=self.site_directives(request),
            prologue=self.script_prologue,
        )
        return render_script(self.script_template, ctx)
