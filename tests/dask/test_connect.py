"""sandfill.dask.connect: kernels find a managed cluster by name (or id) through its
connection file."""

from __future__ import annotations

import json
from pathlib import Path

import dask
import pytest

from sandfill.dask.connect import connection_file, read_connection, security_for


def test_connection_files_by_name_or_id(tmp_path: Path) -> None:
    with dask.config.set({"sandfill.lab.connection-dir": str(tmp_path)}):
        info = {"id": "abc123", "name": "demo", "scheduler_address": "tls://127.0.0.1:1"}
        connection_file("demo").write_text(json.dumps(info))
        assert read_connection("demo") == info and read_connection("abc123") == info
        with pytest.raises(LookupError, match=r"no managed cluster named 'other' \(known: demo\)"):
            read_connection("other")
        for bad in ("demo\n", "../x", "", "a" * 65):
            with pytest.raises(ValueError, match="not a cluster name"):
                connection_file(bad)


def test_security_comes_from_the_staged_tls_files() -> None:
    assert security_for({}) is None
    sec = security_for({"tls": {"ca_file": "/ca.pem", "cert": "/c.pem", "key": "/k.pem"}})
    assert sec is not None and sec.require_encryption and sec.tls_ca_file == "/ca.pem"
