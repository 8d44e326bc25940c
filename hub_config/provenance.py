"""Provenance: what each job sandfill submitted ran, kept after it ended and across restarts.

One record per job (:class:`JobRecord`): the rendered batch script, the validated options,
the environment the job got (values of secret-looking names hidden, the names listed), and
once it ended Slurm's final state, reason and exit code (from sacct) and the tail of its log.
Records live in a root-owned directory (:attr:`Provenance.directory`), one private
subdirectory per user, each written atomically (:func:`sandfill.files.write_private`: a
temporary file, 0600, renamed into place), and at most :attr:`Provenance.keep` per user
(the oldest go). A record that cannot be read is reported as such, never skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from traitlets import Integer, Unicode
from traitlets.config import SingletonConfigurable

from sandfill.files import private_dir, write_private
from sandfill.slurm.states import check_job_id, check_users

HIDDEN = "(hidden)"
#: a variable whose name holds one of these is a secret: its value is never written
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CRYPT", "COOKIE", "CREDENTIAL")


class FinalState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str
    reason: str | None = None
    exit_code: str | None = None
    ended: float | None = None


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    user: str
    job_id: str
    kind: str = "server"
    submitted: float
    script: str
    options: dict[str, Any]
    env: dict[str, str]  # secret values replaced by HIDDEN
    secret_names: list[str]
    final: FinalState | None = None
    log_tail: str | None = None


def is_secret(name: str) -> bool:
    return any(word in name.upper() for word in SECRET_WORDS)


def hide_secrets(env: dict[str, str], script: str) -> tuple[dict[str, str], list[str], str]:
    """(``env`` with secret values hidden, the secret names, ``script`` with any secret value
    that appears in it hidden too)."""
    secrets = sorted(k for k in env if is_secret(k))
    for name in secrets:
        if env[name]:
            script = script.replace(env[name], HIDDEN)
    return {k: HIDDEN if k in secrets else v for k, v in env.items()}, secrets, script


class Provenance(SingletonConfigurable):
    """The hub's provenance records (one per hub process: :meth:`instance`)."""

    directory = Unicode(
        "",
        help="""Directory of the provenance records (made root-owned, 0700; one private
        subdirectory per user). Empty: no records are kept.""",
    ).tag(config=True)

    keep = Integer(
        200, min=1, max=100_000,
        help="Records kept per user (1 to 100000); when a new one is written, the oldest go.",
    ).tag(config=True)

    def _dir(self, user: str) -> Path:
        if not self.directory:
            raise LookupError("provenance records are off (Provenance.directory is empty)")
        check_users([user])
        return private_dir(Path(self.directory) / user)

    def _path(self, user: str, job_id: str) -> Path:
        return self._dir(user) / f"{check_job_id(job_id)}.json"

    def record_submission(self, user: str, job_id: str, script: str, options: dict[str, Any],
                          env: dict[str, str], kind: str = "server") -> Path:
        """Write the record of a job just submitted (and drop the user's oldest beyond
        :attr:`keep`)."""
        shown, secret_names, script = hide_secrets(env, script)
        rec = JobRecord(user=user, job_id=job_id, kind=kind, submitted=time.time(), script=script,
                        options=options, env=shown, secret_names=secret_names)
        path = write_private(self._path(user, job_id), rec.model_dump_json(indent=1))
        self._trim(user)
        return path

    def record_end(self, user: str, job_id: str, final: FinalState, log_tail: str | None) -> JobRecord:
        """Add how the job ended to its record (LookupError when it has none; ValueError
        when it is corrupt)."""
        rec = self.read(user, job_id).model_copy(update={"final": final, "log_tail": log_tail})
        write_private(self._path(user, job_id), rec.model_dump_json(indent=1))
        return rec

    def read(self, user: str, job_id: str) -> JobRecord:
        """One record; LookupError when there is none, ValueError naming the file when it
        cannot be read."""
        path = self._path(user, job_id)
        try:
            raw = path.read_text()
        except FileNotFoundError:
            raise LookupError(f"no provenance record of job {job_id} for {user}") from None
        try:
            rec = JobRecord.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"provenance record {path} is corrupt: {str(exc).splitlines()[0]}") from None
        if rec.user != user or rec.job_id != job_id:
            raise ValueError(f"provenance record {path} is corrupt: it is of {rec.user}'s job {rec.job_id}")
        return rec

    def records(self, user: str) -> list[dict[str, Any]]:
        """Every record of ``user``, newest first, each ``{"job_id", "record"}`` or
        ``{"job_id", "error"}`` (a corrupt one is listed with why)."""
        out: list[tuple[float, dict[str, Any]]] = []
        for path in self._dir(user).glob("*.json"):
            job_id = path.stem
            try:
                rec = self.read(user, job_id)
            except (ValueError, LookupError) as exc:
                out.append((path.stat().st_mtime, {"job_id": job_id, "error": str(exc)}))
                continue
            out.append((rec.submitted, {"job_id": job_id, "record": rec.model_dump()}))
        return [entry for _t, entry in sorted(out, key=lambda e: -e[0])]

    def _trim(self, user: str) -> None:
        files = sorted(self._dir(user).glob("*.json"), key=lambda p: p.stat().st_mtime)
        for path in files[: max(0, len(files) - self.keep)]:
            path.unlink(missing_ok=True)
