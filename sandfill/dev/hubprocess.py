"""Run sandfill's hub as a child process (used by ``sandfill demo``, the tests and the
benchmark): a site file written from a dict, free ports on 127.0.0.1, every user's server on
a subdomain of its own (``http://<user>.localhost:PORT/``: Chromium resolves ``*.localhost``
to loopback, Python's resolver does not, see :meth:`HubProcess.user_url`), readiness checked
by asking the hub's API, stopped by the PID it started. The hub runs under a reaping supervisor
(:func:`sandfill.dev.devcluster.daemons.supervised_argv`): what it starts (its proxy, the idle
culler in a session of its own) stays below that PID and is stopped with it, even when the
hub itself dies first."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sandfill.dev.devcluster import daemons
from sandfill.dev.devcluster.config import free_ports
from sandfill.files import private_dir, write_private
from sandfill.slurm.commands import WaitTimeout, wait_until

CONFIG_FILE = Path(str(resources.files("sandfill.hub").joinpath("jupyterhub_config.py")))


class HubError(RuntimeError):
    pass


class HubProcess:
    """One hub: ``state_dir`` holds its site file, database, cookie secret and log."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        site: Mapping[str, Any],
        *,
        config_file: str | os.PathLike[str] = CONFIG_FILE,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.config_file = Path(config_file)
        self.extra_env = dict(env or {})
        site = dict(site)
        need = [k for k in ("port", "hub_port", "proxy_api_port") if not site.get(k)]
        for key, port in zip(need, free_ports(len(need)), strict=True):
            site[key] = port
        site.setdefault("ip", "127.0.0.1")
        site.setdefault("hub_ip", "127.0.0.1")
        site.setdefault("hub_connect_ip", "127.0.0.1")
        site.setdefault("state_dir", str(self.state_dir / "hub"))
        # per-user origins unless the caller says otherwise (None: one origin, as a control)
        site.setdefault("subdomain_host", f"http://localhost:{site['port']}")
        self.site = site
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The hub's public URL (no trailing /): the subdomain host when users get subdomains
        (``localhost`` resolves everywhere), else the address the proxy listens on."""
        return str(self.site.get("subdomain_host") or f"http://{self.site['ip']}:{self.site['port']}")

    @property
    def address(self) -> tuple[str, int]:
        """Where the proxy listens: what a Python client connects to for any host."""
        return str(self.site["ip"]), int(self.site["port"])

    def user_url(self, user: str) -> str:
        """The URL of ``user``'s server (trailing /), as the hub builds it: on the user's own
        subdomain (JupyterHub's default subdomain hook), else under the hub's origin. A Python
        client connects to :attr:`address` and sends this URL's host as ``Host``."""
        path = f"/user/{urllib.parse.quote(user, safe='')}/"
        if not self.site.get("subdomain_host"):
            return self.url + path
        from jupyterhub.utils import subdomain_hook_idna

        origin = urllib.parse.urlsplit(self.url)
        host = subdomain_hook_idna(user, origin.hostname, "user")
        return f"{origin.scheme}://{host}{f':{origin.port}' if origin.port else ''}{path}"

    @property
    def site_file(self) -> Path:
        return self.state_dir / "site.yaml"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "hub.log"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "hub.pid"

    def write_site(self) -> None:
        """The state directory (ours, not a symlink) and the site file, written with
        O_EXCL|O_NOFOLLOW and renamed into place; only the hub (root) reads it."""
        private_dir(self.state_dir, 0o755)
        write_private(self.site_file, yaml.safe_dump(self.site, sort_keys=False), 0o600)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env["SANDFILL_HUB_SITE"] = str(self.site_file)
        for var in [v for v in env if v.startswith("SANDFILL_HUB_") and v != "SANDFILL_HUB_SITE"]:
            del env[var]  # the site file is the whole truth for a hub we start
        if self.site.get("slurm_conf"):
            env["SLURM_CONF"] = str(self.site["slurm_conf"])
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.write_site()
        log = open(self.log_file, "ab")  # noqa: SIM115 (owned by the child)
        hub = [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(self.config_file)]
        self.proc = subprocess.Popen(
            daemons.supervised_argv(hub, end_the_rest=True),
            cwd=self.state_dir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        write_private(self.pid_file, str(self.proc.pid), 0o644)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        def answers() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/hub/api/", timeout=2) as r:
                    return r.status == 200
            except (urllib.error.URLError, OSError):
                return False

        def exited() -> str | None:
            if self.proc is not None and self.proc.poll() is not None:
                return f"the hub exited with status {self.proc.returncode}"
            return None

        try:
            wait_until(f"the hub to answer at {self.url}", answers, timeout, interval=0.2, abort=exited)
        except WaitTimeout as exc:
            raise HubError(f"{exc}; its log ends:\n{self.log_tail()}") from None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the hub's supervisor (the PID we started): the hub gets the SIGTERM and
        stops its proxy and services, the supervisor then stops whatever is left below it
        (the idle culler runs in a session of its own). The server jobs keep running:
        cleanup_servers is off. If it will not go, everything below it is SIGKILLed."""
        if self.proc is None:
            return
        me = daemons.proc_stat(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout + 20)  # the supervisor's own clean-up takes up to 20 s
            except subprocess.TimeoutExpired:
                if me is not None:
                    daemons.kill_descendants(daemons.Daemon("hub", me.pid, (), "", me.start_time), 10.0)
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        self.pid_file.unlink(missing_ok=True)

    def restart(self, timeout: float = 90.0) -> None:
        self.stop()
        self.start(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, method: str, path: str, token: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        """Call the hub's REST API; returns (status, decoded JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + "/hub/api" + path, data=data, method=method, headers={"Authorization": f"token {token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read().decode()
                status = r.status
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            status = exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw


def stop_recorded_hub(state_dir: str | os.PathLike[str]) -> bool:
    """Stop a hub recorded in ``state_dir/hub.pid`` by ``sandfill demo`` (after checking the
    PID is still that jupyterhub). Returns whether one was stopped."""
    pid_file = Path(state_dir) / "hub.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        pid_file.unlink(missing_ok=True)
        return False
    if not any(part.endswith(b"/jupyterhub") for part in cmdline[:8]):  # under its supervisor
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(WaitTimeout):  # the PID file goes either way
        wait_until(f"the hub (pid {pid}) to exit", lambda: not Path(f"/proc/{pid}").exists(), 30, interval=0.2)
    pid_file.unlink(missing_ok=True)
    return True


def user_token(hub: HubProcess, user: str, timeout: float = 60.0) -> str:
    """An API token for ``user`` (as ``jupyterhub token`` makes one for a site's scripts)."""
    res = subprocess.run(
        [str(Path(sys.executable).parent / "jupyterhub"), "token", "-f", str(hub.config_file), user],
        cwd=hub.state_dir,
        env=hub.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    token = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if res.returncode != 0 or not token:
        raise HubError(f"`jupyterhub token {user}` failed: {res.stderr.strip()[-800:]}")
    return token
