"""``sandfill.hub.provenance``: records written atomically and privately, secrets hidden,
bounded retention, the end added later, a corrupt record reported, a restart survived."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sandfill.hub.provenance import HIDDEN, FinalState, Provenance

SCRIPT = "#!/bin/bash\n#SBATCH --job-name=jupyterhub-sftest-ada\nexport X=tok-123\njupyterhub-singleuser\n"
ENV = {"JUPYTERHUB_API_TOKEN": "tok-123", "JUPYTERHUB_USER": "sftest-ada", "JPY_COOKIE_SECRET": "c00k"}


def store(tmp_path: Path, **kw: object) -> Provenance:
    return Provenance(directory=str(tmp_path / "prov"), **kw)


def test_a_record_is_private_atomic_and_hides_secret_values(tmp_path: Path) -> None:
    p = store(tmp_path)
    path = p.record_submission("sftest-ada", "42", SCRIPT, {"profile": "small", "cpus": 1}, ENV)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert [f.name for f in path.parent.iterdir()] == ["42.json"]  # no temporary file left
    text = path.read_text()
    assert "tok-123" not in text and "c00k" not in text
    rec = p.read("sftest-ada", "42")
    assert rec.env == {"JUPYTERHUB_API_TOKEN": HIDDEN, "JUPYTERHUB_USER": "sftest-ada", "JPY_COOKIE_SECRET": HIDDEN}
    assert rec.secret_names == ["JPY_COOKIE_SECRET", "JUPYTERHUB_API_TOKEN"]
    assert f"export X={HIDDEN}" in rec.script and rec.options == {"profile": "small", "cpus": 1}


def test_the_end_is_added_and_survives_a_restart(tmp_path: Path) -> None:
    store(tmp_path).record_submission("sftest-ada", "42", SCRIPT, {}, ENV)
    store(tmp_path).record_end("sftest-ada", "42", FinalState(state="TIMEOUT", exit_code="0:15", ended=5.0), "last line\n")
    rec = store(tmp_path).read("sftest-ada", "42")  # a new store: the hub restarted
    assert rec.final is not None and rec.final.state == "TIMEOUT" and rec.final.exit_code == "0:15"
    assert rec.log_tail == "last line\n"


def test_retention_keeps_the_newest_and_users_see_only_their_own(tmp_path: Path) -> None:
    p = store(tmp_path, keep=3)
    for n in range(1, 6):
        p.record_submission("sftest-ada", str(n), SCRIPT, {}, {})
    p.record_submission("sftest-bob", "9", SCRIPT, {}, {})
    assert [e["job_id"] for e in p.records("sftest-ada")] == ["5", "4", "3"]
    assert [e["job_id"] for e in p.records("sftest-bob")] == ["9"]
    with pytest.raises(LookupError, match="no provenance record of job 9 for sftest-ada"):
        p.read("sftest-ada", "9")


def test_a_corrupt_record_is_reported_not_skipped(tmp_path: Path) -> None:
    p = store(tmp_path)
    p.record_submission("sftest-ada", "1", SCRIPT, {}, {})
    path = p.record_submission("sftest-ada", "2", SCRIPT, {}, {})
    path.write_text('{"version": 1, "user": "sftest-ada"')
    entries = {e["job_id"]: e for e in p.records("sftest-ada")}
    assert "record" in entries["1"]
    assert entries["2"]["error"].startswith(f"provenance record {path} is corrupt")
    with pytest.raises(ValueError, match="is corrupt"):
        p.record_end("sftest-ada", "2", FinalState(state="COMPLETED"), None)


def test_bad_names_and_ids_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    p = store(tmp_path)
    with pytest.raises(ValueError, match="not a user name: '../x'"):
        p.record_submission("../x", "1", SCRIPT, {}, {})
    with pytest.raises(ValueError, match="not a Slurm job id: '1/../../2'"):
        p.record_submission("sftest-ada", "1/../../2", SCRIPT, {}, {})
    assert [f.name for f in (tmp_path / "prov").rglob("*") if f.is_file()] == []
    with pytest.raises(LookupError, match="records are off"):
        Provenance().records("sftest-ada")
