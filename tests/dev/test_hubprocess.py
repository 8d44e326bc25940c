"""``sandfill.dev.hubprocess``: a HubProcess stopped by SIGTERM (as ``sandfill demo`` is)
leaves nothing it started running: not the hub, not its proxy, not a service that JupyterHub
started in a session of its own (the idle culler was seen orphaned), even when the hub itself
died first. A stock hub with one stand-in service, no Slurm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandfill.dev.devcluster import daemons
from sandfill.slurm.commands import wait_until

CONFIG = """\
import os, yaml
site = yaml.safe_load(open(os.environ["SANDFILL_HUB_SITE"]))
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = site["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = site["hub_port"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{site['proxy_api_port']}"
c.JupyterHub.authenticator_class = "dummy"
# a stand-in for the idle culler: JupyterHub starts services in a new session
c.JupyterHub.services = [{"name": "stand-in-culler", "command": ["sleep", "3600"]}]
"""

# what `sandfill demo` does around its hub: SIGTERM runs the finally, which stops the hub
WRAPPER = """\
import sys
from sandfill.dev.hubprocess import HubProcess
from sandfill.dev.testing import exit_on_sigterm
exit_on_sigterm()
hub = HubProcess(sys.argv[1], {}, config_file=sys.argv[2])
try:
    hub.start(timeout=90)
    print("ready", flush=True)
    sys.stdin.read()
finally:
    hub.stop()
"""


def _cmd(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _tree(pid: int) -> list[daemons.Proc]:
    me = daemons.proc_stat(pid)
    assert me is not None
    return daemons.descendants(daemons.Daemon("wrapper", pid, (), "", me.start_time))


@pytest.mark.parametrize("hub_dies_first", [False, True], ids=["sigterm", "hub-killed-then-sigterm"])
def test_sigterm_leaves_nothing_it_started(tmp_path: Path, hub_dies_first: bool) -> None:
    (tmp_path / "hub_config.py").write_text(CONFIG)
    wrapper = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(tmp_path / "state"), str(tmp_path / "hub_config.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    started: list[daemons.Proc] = []
    try:
        assert wrapper.stdout is not None
        assert wrapper.stdout.readline().strip() == "ready", wrapper.stdout.read()
        started = wait_until(
            "the stand-in culler to run", lambda: (t := _tree(wrapper.pid)) and any("3600" in _cmd(p.pid) for p in t) and t,
            timeout=60,
        )
        culler = next(p for p in started if "3600" in _cmd(p.pid))
        assert os.getsid(culler.pid) != os.getsid(wrapper.pid)  # its own session, as seen
        if hub_dies_first:  # a crash: the hub gets no chance to stop its proxy and services
            hub = next(p for p in started if any(a.endswith("/jupyterhub") for a in _cmd(p.pid)[:2]))
            os.kill(hub.pid, signal.SIGKILL)
        wrapper.send_signal(signal.SIGTERM)
        wrapper.communicate(timeout=120)
        wait_until(
            "nothing the HubProcess started to remain",
            lambda: not any(daemons.is_alive(p) for p in started),
            timeout=60,
            describe=lambda: str([(p.pid, _cmd(p.pid)) for p in started if daemons.is_alive(p)]),
        )
    finally:
        for p in started:  # whatever failed above, stop what this test started, by PID
            if daemons.is_alive(p):
                os.kill(p.pid, signal.SIGKILL)
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait(10)


def test_the_site_file_is_private_and_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    from sandfill.dev.hubprocess import HubProcess

    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (tmp_path / "state").mkdir(mode=0o777)
    (tmp_path / "state" / "site.yaml").symlink_to(victim)
    hub = HubProcess(tmp_path / "state", {"slurm_conf": "/x/slurm.conf"})
    hub.write_site()
    assert victim.read_text() == "untouched"
    st = os.lstat(hub.site_file)
    assert st.st_mode & 0o777 == 0o600 and "slurm_conf: /x/slurm.conf" in hub.site_file.read_text()
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o755


def test_a_hub_we_start_puts_each_user_on_a_subdomain_unless_told_not_to(tmp_path: Path) -> None:
    from sandfill.dev.hubprocess import HubProcess
    from sandfill.hub.site import site_from_dict

    hub = HubProcess(tmp_path / "a", {"port": 8123})
    assert hub.url == "http://localhost:8123" and hub.address == ("127.0.0.1", 8123)
    assert hub.user_url("sfdemo-ada") == "http://sfdemo-ada.localhost:8123/user/sfdemo-ada/"
    assert hub.user_url("a--b").endswith(".localhost:8123/user/a--b/")  # JupyterHub's hook hashes it
    hub.write_site()
    assert "subdomain_host: http://localhost:8123" in hub.site_file.read_text()
    assert site_from_dict({"subdomain_host": hub.site["subdomain_host"]}).subdomain_host == hub.url
    one = HubProcess(tmp_path / "b", {"port": 8124, "subdomain_host": None})
    assert one.url == "http://127.0.0.1:8124" and one.user_url("sfdemo-ada") == "http://127.0.0.1:8124/user/sfdemo-ada/"
