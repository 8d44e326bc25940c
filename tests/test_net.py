"""sandfill.net: the local address toward a peer (no packet is sent)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sandfill.net import AddressError, local_address_toward, main, with_host


def test_loopback_toward_loopback_and_a_bad_name_is_named() -> None:
    assert local_address_toward("127.0.0.1") == "127.0.0.1"
    with pytest.raises(AddressError, match="'no-such-host.invalid' does not resolve"):
        local_address_toward("no-such-host.invalid")


def test_a_url_gets_the_address_toward_its_peer(capsys: pytest.CaptureFixture[str]) -> None:
    assert with_host("http://127.0.0.1:0/user/a/?x=1", "192.0.2.7") == "http://192.0.2.7:0/user/a/?x=1"
    assert with_host("http://h/", "::1") == "http://[::1]/"
    assert main(["url", "http://0.0.0.0:0/user/a/", "--toward", "http://127.0.0.1:8081/hub/api"]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:0/user/a/\n"
    assert main(["url", "http://x/", "--toward", "not-a-url"]) == 2
    assert "names no host" in capsys.readouterr().err


def test_the_module_runs_as_a_command() -> None:
    out = subprocess.run([sys.executable, "-m", "sandfill.net", "toward", "127.0.0.1"], capture_output=True, text=True, check=True)
    assert out.stdout == "127.0.0.1\n"
