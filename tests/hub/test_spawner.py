"""The spawner without a hub or Slurm: what sbatch's environment holds, which options are
kept, and that user lookups run off the event loop."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Hub
from loop_probe import run_beside_a_ticker

from sandfill.hub.form import FormError, ResourceRequest
from sandfill.hub.spawner import BackfillSlurmSpawner
from sandfill.hub.submit import HUB_SECRETS

from .test_form import CHOICES

CHOICES_REQUEST = ResourceRequest("small", 1, 2048, 7200, "interactive", None)

SECRETS = {
    "CONFIGPROXY_AUTH_TOKEN": "proxy-secret-1f2e",
    "JUPYTERHUB_CRYPT_KEY": "crypt-secret-3d4c",
    "JPY_COOKIE_SECRET": "cookie-secret-5b6a",
    "SANDFILL_TEST_HUB_SECRET": "other-secret-7988",
}


class FakeDB:
    def __init__(self) -> None:
        self.commits = 0

    def commit(self) -> None:
        self.commits += 1


def spawner(saved: dict[str, Any] | None = None, **kwargs: Any) -> BackfillSlurmSpawner:
    user = SimpleNamespace(name="root", url="/user/root/", escaped_name="root")
    orm = SimpleNamespace(user_options=saved, server=None, state={}, name="")
    sp = BackfillSlurmSpawner(user=user, hub=Hub(), api_token="server-token", orm_spawner=orm, db=FakeDB(),
                              slurm_conf="/x/slurm.conf", **kwargs)

    async def choices() -> Any:
        return CHOICES

    sp.choices = choices  # type: ignore[method-assign]
    return sp


def test_sbatch_gets_only_the_jobs_variables_never_the_hubs_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    sp = spawner()
    # even a site that lists the hub's secrets for the job does not pass them on
    sp.env_keep = [*sp.env_keep, *HUB_SECRETS]
    sp.environment = {"JUPYTERHUB_CRYPT_KEY": "crypt-secret-3d4c"}
    asyncio.run(sp._home())
    env = sp._client(as_user=True).runner.env
    leaked = {k for k, v in env.items() if any(s in v for s in SECRETS.values())}
    assert not leaked and not set(SECRETS) & set(env), leaked
    assert env["JUPYTERHUB_API_TOKEN"] == "server-token" and env["SLURM_CONF"] == "/x/slurm.conf"
    assert env["PATH"] and env["SLURM_UMASK"] == "0077"
    allowed = {"PATH", "LANG", "LC_ALL", "USER", "HOME", "SHELL", "SLURM_CONF", "SLURM_UMASK", "SANDFILL_WALLTIME_WARNING"}
    assert {k for k in env if not k.startswith(("JUPYTERHUB_", "JPY_API_TOKEN"))} <= allowed
    # the root client (scancel) keeps the hub's own environment; it never runs as the user
    assert sp._client(as_user=False).runner.prefix == []


def test_refused_options_are_not_kept_and_the_next_spawn_gets_the_defaults() -> None:
    bad = {"cpus": "1\n#SBATCH --uid=0"}
    sp = spawner(saved=bad)  # JupyterHub saved them before asking the spawner
    with pytest.raises(FormError):
        asyncio.run(sp.apply_request(bad))
    assert sp.orm_spawner.user_options == {} and sp.user_options == {} and sp.db.commits == 1
    assert sp.request is None
    # a later spawn without options: JupyterHub hands over the saved ones, now none
    request = asyncio.run(sp.apply_request(sp.orm_spawner.user_options))
    assert request.profile == "small" and request.cpus == 1


def test_accepted_options_are_kept_in_their_validated_form() -> None:
    sp = spawner(saved={"profile": "small", "cpus": " 1 "})
    asyncio.run(sp.apply_request({"profile": "small", "cpus": " 1 "}))
    assert sp.orm_spawner.user_options == sp.request.as_options()  # type: ignore[union-attr]
    assert sp.orm_spawner.user_options["cpus"] == 1


def test_user_lookup_runs_off_the_loop_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    loop_threads: list[int] = []

    def slow_getpwnam(name: str) -> Any:
        loop_threads.append(threading.get_ident())
        release.wait(10)
        raise KeyError(name)

    monkeypatch.setattr("sandfill.hub.submit.pwd.getpwnam", slow_getpwnam)
    sp = spawner(lookup_timeout=0.2)

    message, ticks = run_beside_a_ticker(sp._home, release)
    assert "looking up user 'root' took longer than 0.2 s" in message
    assert ticks >= 5  # the loop went on while the lookup hung
    assert loop_threads and loop_threads[0] != threading.get_ident()


def test_the_submitted_job_is_committed_as_starting_as_soon_as_sbatch_returns() -> None:
    """JupyterHub saves a spawner's state only when start() returns: a hub restart while the
    job is pending must still find it (see test_orphans for what the new process does)."""

    class FakeSubmit:
        async def submit(self, script: str) -> str:
            return "60"

    async def home() -> str:
        return "/home/root"

    sp = spawner()
    sp._client = lambda as_user: FakeSubmit()  # type: ignore[method-assign,assignment,return-value]
    sp._home = home  # type: ignore[method-assign]
    try:
        assert asyncio.run(sp.submit_batch_script()) == "60"
        assert sp.orm_spawner.state["starting"] == "60" and sp.db.commits >= 1
        assert sp.get_state()["starting"] == "60"
        sp.mark_starting(None)  # start() returned: the server is up, nothing in flight
        assert "starting" not in sp.orm_spawner.state and "starting" not in sp.get_state()
    finally:
        sp.forget_starting()


def test_the_server_jupyterlab_neither_asks_for_news_nor_checks_for_updates() -> None:
    sp = spawner()
    home = asyncio.run(sp._home())
    script = sp.render_script(CHOICES_REQUEST, home)
    command = script.splitlines()[-1]
    assert command.startswith("exec ") and "--LabApp.news_url=None" in command
    assert "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate" in command
    # the values are what JupyterLab reads: None turns the news off, the class exists
    from jupyterlab import NeverCheckForUpdate  # noqa: F401
    from jupyterlab.labapp import LabApp

    app = LabApp()
    app.parse_command_line(sp.lab_args)
    assert app.news_url is None and app.check_for_updates_class.__name__ == "NeverCheckForUpdate"
