"""The user's backfill Dask clusters, owned by the Jupyter server process.

An asyncio manager with no web imports: the REST handlers are a thin layer over it. Clusters
live as long as the server, so they survive kernel restarts and closed notebooks; kernels
attach by name through a connection file (``sandfill.dask.connect``)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask

from sandfill import files
from sandfill.dask import BackfillSLURMCluster
from sandfill.dask.config import seconds, worker_count
from sandfill.dask.connect import NAME_RE
from sandfill.files import private_dir, write_private
from sandfill.schema import check_slurm_name
from sandfill.slurm import SlurmClient, SlurmCommandError
from sandfill.units import UnitError, format_duration, parse_duration, parse_memory


class BadRequest(ValueError):
    """400: the message names the bad field and value."""


class NotFound(KeyError):
    """404."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


MAX_MEMORY_MIB = 1024**2  # 1 TiB per worker job
#: the most of a worker job's log (its .out and .err together) one read returns
LOG_TAIL_BYTES = 64_000
PARAM_KEYS = ("cores", "memory", "min_walltime", "max_walltime", "partition", "qos")
CREATE_KEYS = {"template", "name", "workers", *PARAM_KEYS}


@dataclass
class Managed:
    id: str
    name: str
    template: str | None
    params: dict[str, Any]
    cluster: BackfillSLURMCluster
    created: float = field(default_factory=time.time)


def _int(body: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = body.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRequest(f"{key}: must be a whole number from {lo} to {hi}, not {v!r}")
    if not lo <= v <= hi:
        raise BadRequest(f"{key}: must be from {lo} to {hi}, not {v}")
    return v


def _workers(body: dict[str, Any], key: str) -> int:
    """A worker count: the one cap (``sandfill.lab.max-workers``) that the scheduler's own
    handlers use too, in the same words."""
    try:
        return worker_count(key, body.get(key))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def read_tail(path: Path, max_bytes: int) -> str | None:
    """The last ``max_bytes`` of ``path`` if it is a regular file of ours (see
    :func:`sandfill.files.read_tail`), a note when it is something else, None when missing."""
    try:
        return files.read_tail(path, max_bytes)
    except files.RefusedFile:
        return "(not shown: not a regular file of yours)"


def _duration(body: dict[str, Any], key: str) -> int:
    """A walltime field in seconds, read as Slurm reads it ("2:00" is two minutes)."""
    try:
        return parse_duration(body.get(key), key=key, positive=True)
    except UnitError as exc:
        raise BadRequest(str(exc)) from None


def _memory(body: dict[str, Any], key: str) -> int:
    """A memory field in MiB, read as Slurm reads it ("4G" is 4096 MiB)."""
    try:
        mib = parse_memory(body.get(key), key=key)
    except UnitError as exc:
        raise BadRequest(str(exc)) from None
    if mib > MAX_MEMORY_MIB:
        raise BadRequest(f"{key}: {body.get(key)!r} is more than 1 TiB")
    return mib


class ClusterManager:
    def __init__(
        self,
        *,
        templates: list[dict[str, Any]] | None = None,
        max_clusters: int | None = None,
        connection_dir: str | os.PathLike[str] | None = None,
        slurm: SlurmClient | None = None,
        base_url: str | None = None,
    ) -> None:
        self._templates = {t["name"]: dict(t) for t in (templates or dask.config.get("sandfill.lab.templates"))}
        self.max_clusters = int(max_clusters or dask.config.get("sandfill.lab.max-clusters"))
        #: the Jupyter server's base URL: each cluster's dashboard link goes through its proxy
        self.base_url = base_url
        self.connection_dir = Path(os.path.expanduser(connection_dir or dask.config.get("sandfill.lab.connection-dir")))
        self.slurm = slurm or SlurmClient(dask.config.get("jobqueue.sandfill.slurm-conf") or None)
        self._clusters: dict[str, Managed] = {}
        self._lock = asyncio.Lock()

    # ---- reading ----------------------------------------------------------------------
    def templates(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self._templates.values()]

    def list(self) -> list[dict[str, Any]]:
        return [self._model(m) for m in sorted(self._clusters.values(), key=lambda m: m.created)]

    def get(self, cid: str) -> dict[str, Any]:
        return self._model(self._find(cid))

    def jobs(self, cid: str) -> list[dict[str, Any]]:
        return [j.to_dict() for j in self._find(cid).cluster.jobs]

    async def job_log(self, cid: str, job_id: str, max_bytes: int = LOG_TAIL_BYTES) -> dict[str, str]:
        """The tail of one of this cluster's worker jobs' logs (read off the event loop)."""
        m = self._find(cid)
        if job_id not in {j.job_id for j in m.cluster.jobs if j.job_id}:
            raise NotFound(f"cluster {m.name!r} has no worker job {job_id!r}")
        job = m.cluster._dummy_job
        parts = []
        for ext in ("out", "err"):
            path = Path(job.log_directory or ".") / f"{job.job_name}-{job_id}.{ext}"
            text = await asyncio.to_thread(read_tail, path, max_bytes // 2)
            if text is not None:
                parts.append(f"==> {path.name} <==\n" + text)
        return {"job_id": job_id, "text": "\n".join(parts) or "(no output yet)"}

    # ---- changing -----------------------------------------------------------------------
    async def create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest(f"body: must be a JSON object, not {type(body).__name__}")
        unknown = sorted(set(body) - CREATE_KEYS)
        if unknown:
            raise BadRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(CREATE_KEYS))})")
        template = body.get("template")
        if template is not None:
            if not isinstance(template, str) or template not in self._templates:
                raise BadRequest(f"template: {template!r} is not one of {', '.join(self._templates)}")
            params = {k: v for k, v in self._templates[template].items() if k in PARAM_KEYS}
            params.update({k: body[k] for k in PARAM_KEYS if k in body})
        else:
            params = {k: body.get(k) for k in PARAM_KEYS}
        params = await self._validate_params(params)
        workers = _workers(body, "workers") if "workers" in body else 0
        async with self._lock:
            name = body.get("name") or self._fresh_name(template or "cluster")
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                raise BadRequest(f"name: {name!r} is not a valid name (letters, digits, '.', '_', '-'; up to 64)")
            if any(m.name == name for m in self._clusters.values()):
                raise BadRequest(f"name: a cluster named {name!r} already exists")
            if len(self._clusters) >= self.max_clusters:
                raise BadRequest(f"clusters: at most {self.max_clusters} clusters per user")
            cid = secrets.token_hex(6)
            cluster = await self._start_cluster(name, params)
            m = Managed(cid, name, template, params, cluster)
            self._clusters[cid] = m
            self._write_connection(m)
        if workers:
            cluster.scale(workers)
        return self._model(m)

    async def patch(self, cid: str, body: Any) -> dict[str, Any]:
        m = self._find(cid)
        if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in {"scale", "adapt"}:
            raise BadRequest(f"body: must be {{'scale': n}} or {{'adapt': {{'minimum': a, 'maximum': b}}}}, not {body!r}")
        if "scale" in body:
            n = _workers(body, "scale")
            m.cluster.scale(n)
        else:
            a = body["adapt"]
            if not isinstance(a, dict) or set(a) != {"minimum", "maximum"}:
                raise BadRequest(f"adapt: must be {{'minimum': a, 'maximum': b}}, not {a!r}")
            lo = _workers(a, "minimum")
            hi = _workers(a, "maximum")
            if lo > hi:
                raise BadRequest(f"adapt: minimum ({lo}) must not exceed maximum ({hi})")
            m.cluster.adapt(minimum=lo, maximum=hi)
        return self._model(m)

    async def delete(self, cid: str) -> None:
        m = self._find(cid)
        del self._clusters[m.id]
        self._remove_connection(m)
        await m.cluster.close()

    async def close(self) -> None:
        for cid in list(self._clusters):
            await self.delete(cid)

    # ---- helpers --------------------------------------------------------------------------
    async def _start_cluster(self, name: str, params: dict[str, Any]) -> BackfillSLURMCluster:
        """A started cluster; a setting the cluster refuses (a dashboard beyond loopback, no
        TLS without the admin's leave) is a BadRequest in the cluster's own words."""
        try:
            cluster = await BackfillSLURMCluster(
                asynchronous=True,
                name=name,
                cores=params["cores"],
                memory=params["memory"],
                min_walltime=params["min_walltime"],
                max_walltime=params["max_walltime"],
                queue=params["partition"],
                qos=params["qos"],
            )
        except ValueError as exc:
            raise BadRequest(f"cluster: {exc}") from None
        if self.base_url:
            cluster.proxy_prefix = self.base_url
        return cluster

    def _find(self, cid: str) -> Managed:
        m = self._clusters.get(cid) or next((m for m in self._clusters.values() if m.name == cid), None)
        if m is None:
            raise NotFound(f"no cluster {cid!r}")
        return m

    def _fresh_name(self, base: str) -> str:
        names = {m.name for m in self._clusters.values()}
        i = 1
        while f"{base}-{i}" in names:
            i += 1
        return f"{base}-{i}"

    async def _validate_params(self, p: dict[str, Any]) -> dict[str, Any]:
        cores = _int(p, "cores", 1, 256)
        mib = _memory(p, "memory")
        lo, hi = _duration(p, "min_walltime"), _duration(p, "max_walltime")
        if lo > hi:
            raise BadRequest(f"min_walltime: {p['min_walltime']!r} is longer than max_walltime {p['max_walltime']!r}")
        margin = seconds("retire-margin")
        if lo <= margin + 10:
            raise BadRequest(
                f"min_walltime: {p['min_walltime']!r} leaves no time to work: workers retire "
                f"{format_duration(margin)} before the end (jobqueue.sandfill.retire-margin)"
            )
        for key in ("partition", "qos"):
            v = p.get(key)
            if v is not None:
                try:
                    check_slurm_name(v)
                except ValueError as exc:
                    raise BadRequest(f"{key}: {exc}") from None
        if p.get("partition"):
            try:
                parts = set(await self.slurm.partitions())
            except SlurmCommandError as exc:
                raise BadRequest(f"partition: cannot check {p['partition']!r} against Slurm: {exc}") from None
            if p["partition"] not in parts:
                raise BadRequest(f"partition: {p['partition']!r} is not one of {', '.join(sorted(parts))}")
        return {
            "cores": cores,
            "memory": f"{mib}MiB",
            "min_walltime": format_duration(lo),
            "max_walltime": format_duration(hi),
            "partition": p.get("partition"),
            "qos": p.get("qos"),
        }

    def _model(self, m: Managed) -> dict[str, Any]:
        model = m.cluster.model()
        # relative to the Jupyter server's base URL: through its authenticated proxy
        model.update({"id": m.id, "name": m.name, "template": m.template, "dashboard_link": m.cluster.dashboard_path, "created": m.created})
        return model

    def _write_connection(self, m: Managed) -> None:
        """The cluster's connection file (and its client TLS material), private from the first
        byte: a loose or symlinked directory is tightened or refused, a planted file or
        symlink at the target is replaced, never written through (:mod:`sandfill.files`)."""
        d = private_dir(self.connection_dir)
        info: dict[str, Any] = {"id": m.id, "name": m.name, "scheduler_address": m.cluster.scheduler_address}
        sec = m.cluster.security
        if sec is not None and getattr(sec, "require_encryption", False):
            tls_dir = private_dir(d / m.id)
            conf = sec.get_tls_config_for_role("client")
            files = {}
            for key in ("ca_file", "cert", "key"):
                value = conf.get(key)
                if value and "\n" in value:  # in-memory PEM: stage it as a private file
                    value = str(write_private(tls_dir / f"{key}.pem", value))
                files[key] = value
            info["tls"] = files
        write_private(d / f"{m.name}.json", json.dumps(info))

    def _remove_connection(self, m: Managed) -> None:
        (self.connection_dir / f"{m.name}.json").unlink(missing_ok=True)
        shutil.rmtree(self.connection_dir / m.id, ignore_errors=True)

