"""sandfill.lab.manager without a Jupyter server or Slurm: bodies are read with
sandfill.units ("2:00" is two minutes, "4G" is 4096 MiB) and bad values are BadRequest
(400) naming the field, before anything is created."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dask
import pytest

from sandfill.dask import BackfillSLURMCluster
from sandfill.dask.config import max_workers
from sandfill.lab.manager import BadRequest, ClusterManager, Managed, NotFound, read_tail
from sandfill.slurm import SlurmCommandError
from sandfill.slurm.sinfo import PartitionInfo, parse_partitions

pytestmark = pytest.mark.asyncio

PARTITIONS = "interactive|up|8:00:00|8|4|6/26/0/32|16000\nburst|up|1:00:00|8|4|6/26/0/32|16000\n"


class FakeSlurm:
    def __init__(self, stdout: str = PARTITIONS, returncode: int = 0) -> None:
        self.stdout, self.returncode = stdout, returncode
        self.calls: list[str] = []

    async def partitions(self) -> dict[str, PartitionInfo]:
        self.calls.append("partitions")
        if self.returncode:
            raise SlurmCommandError(["sinfo"], 1, "", "Unable to contact slurm controller")
        return parse_partitions(self.stdout)


def manager(tmp_path: Path, slurm: FakeSlurm | None = None) -> ClusterManager:
    return ClusterManager(connection_dir=tmp_path, slurm=slurm or FakeSlurm())  # type: ignore[arg-type]


def body(**kw: Any) -> dict[str, Any]:
    return {"cores": 1, "memory": "1GiB", "min_walltime": "00:05:00", "max_walltime": "01:00:00", "partition": None, "qos": None, **kw}


async def test_durations_and_memory_are_read_as_slurm_reads_them(tmp_path: Path) -> None:
    m = manager(tmp_path)
    p = await m._validate_params(body(memory="4G", min_walltime="2:00", max_walltime="2h"))
    assert (p["memory"], p["min_walltime"], p["max_walltime"]) == ("4096MiB", "00:02:00", "02:00:00")
    p = await m._validate_params(body(memory=512, min_walltime=30, max_walltime="1-00"))  # bare numbers: MiB, minutes
    assert (p["memory"], p["min_walltime"], p["max_walltime"]) == ("512MiB", "00:30:00", "1-00:00:00")


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("min_walltime", "-", "min_walltime: '-' is not a duration"),
        ("min_walltime", "1-", "min_walltime: '1-' is not a duration"),
        ("max_walltime", "1:2:3:4", "max_walltime: '1:2:3:4' is not a duration"),
        ("max_walltime", "0", "max_walltime: '0' must be longer than zero"),
        ("max_walltime", None, "max_walltime: None is not a duration"),
        ("min_walltime", True, "min_walltime: True is not a duration"),
        ("memory", "4X", "memory: '4X' is not an amount of memory"),
        ("memory", "0", "memory: '0' must be more than zero"),
        ("memory", "2T", "memory: '2T' is more than 1 TiB"),
        ("memory", [1], "memory: [1] is not an amount of memory"),
        ("cores", "2", "cores: must be a whole number"),
        ("qos", "a b", "qos: 'a b' is not a Slurm name"),
        ("partition", "burst\n", "partition: 'burst\\n' is not a Slurm name"),
        ("qos", "-normal", "qos: '-normal' is not a Slurm name"),  # would be an sbatch option
        ("qos", "a,normal", "qos: 'a,normal' is not a Slurm name"),
    ],
)
async def test_bad_values_are_400_naming_the_field(tmp_path: Path, field: str, value: Any, needle: str) -> None:
    slurm = FakeSlurm()
    with pytest.raises(BadRequest) as err:
        await manager(tmp_path, slurm)._validate_params(body(**{field: value}))
    assert needle in str(err.value)
    assert slurm.calls == []  # refused before asking Slurm


async def test_walltime_order_and_retire_margin(tmp_path: Path) -> None:
    m = manager(tmp_path)
    with pytest.raises(BadRequest, match="min_walltime: '20:00' is longer than max_walltime '10:00'"):
        await m._validate_params(body(min_walltime="20:00", max_walltime="10:00"))
    with pytest.raises(BadRequest, match="min_walltime: '1:00' leaves no time to work"):
        await m._validate_params(body(min_walltime="1:00"))  # one minute: all of it retire-margin


async def test_partition_is_checked_against_slurm(tmp_path: Path) -> None:
    slurm = FakeSlurm()
    m = manager(tmp_path, slurm)
    assert (await m._validate_params(body(partition="burst")))["partition"] == "burst"
    assert slurm.calls == ["partitions"]
    with pytest.raises(BadRequest, match="partition: 'nope' is not one of burst, interactive"):
        await m._validate_params(body(partition="nope"))
    with pytest.raises(BadRequest, match="partition: cannot check 'burst' against Slurm: sinfo failed: Unable to contact"):
        await manager(tmp_path, FakeSlurm(returncode=1))._validate_params(body(partition="burst"))


async def test_create_refuses_before_creating(tmp_path: Path) -> None:
    m = manager(tmp_path)
    for bad, needle in [
        ([1], "body: must be a JSON object"),
        ({"template": "small", "bogus": 1}, "bogus: unknown field"),
        ({"template": "huge"}, "template: 'huge' is not one of"),
        ({"template": "small", "min_walltime": "1:2:3:4"}, "min_walltime: '1:2:3:4' is not a duration"),
        ({"template": "small", "workers": -1}, "workers: must be a whole number from 0 to 64, not -1"),
        ({"template": "small", "name": "demo\n"}, "name: 'demo\\n' is not a valid name"),
    ]:
        with pytest.raises(BadRequest) as err:
            await m.create(bad)
        assert needle in str(err.value), (bad, err.value)
    assert m.list() == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(NotFound, match="no cluster 'nope'"):
        m.get("nope")


async def test_templates_read_the_packaged_defaults(tmp_path: Path) -> None:
    templates = manager(tmp_path).templates()
    assert {t["name"] for t in templates} >= {"small", "medium"}
    for t in templates:
        assert (await manager(tmp_path)._validate_params({k: t[k] for k in body()}))["cores"] == t["cores"]


# ---- hardening (#11): job logs, cross-cluster reads, one worker cap ------------------------


class FakeCluster:
    """What the manager reads of a cluster: its jobs, its log directory, its model."""

    def __init__(self, logs: Path, job_ids: list[str]) -> None:
        self.jobs = [SimpleNamespace(job_id=j, to_dict=lambda j=j: {"job_id": j}) for j in job_ids]
        self._dummy_job = SimpleNamespace(log_directory=str(logs), job_name="sandfill-worker")
        self.dashboard_path = "proxy/1234/status"
        self.scaled: list[int] = []

    def model(self) -> dict[str, Any]:
        return {"name": "fake"}

    def scale(self, n: int) -> None:
        self.scaled.append(n)


def with_clusters(tmp_path: Path, **jobs: list[str]) -> ClusterManager:
    m = manager(tmp_path / "connections")
    for name, ids in jobs.items():
        logs = tmp_path / name
        logs.mkdir()
        m._clusters[name] = Managed(name, name, None, {}, FakeCluster(logs, ids))  # type: ignore[arg-type]
    return m


def log_path(tmp_path: Path, cluster: str, job_id: str, ext: str = "out") -> Path:
    return tmp_path / cluster / f"sandfill-worker-{job_id}.{ext}"


def in_thread(fn: Any, timeout: float = 10) -> Any:
    """``fn()`` in a daemon thread: a read that would block (a FIFO) fails the test instead of
    hanging it."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(timeout)
    assert out, f"still blocked after {timeout} s"
    return out[0]


async def test_a_job_log_is_read_only_through_its_own_cluster(tmp_path: Path) -> None:
    m = with_clusters(tmp_path, a=["11"], b=["22"])
    log_path(tmp_path, "a", "11").write_text("hello from 11\n")
    log_path(tmp_path, "b", "22").write_text("secret of b\n")
    assert "hello from 11" in (await m.job_log("a", "11"))["text"]
    for cid, job_id in [("a", "22"), ("b", "11"), ("a", "../b/sandfill-worker-22"), ("a", "999999"), ("nope", "11")]:
        with pytest.raises(NotFound) as err:
            await m.job_log(cid, job_id)
        assert "secret" not in str(err.value)


async def test_a_log_replaced_by_a_symlink_is_not_followed(tmp_path: Path) -> None:
    m = with_clusters(tmp_path, a=["11"])
    log_path(tmp_path, "a", "11").symlink_to("/etc/shadow")
    log_path(tmp_path, "a", "11", "err").symlink_to("/dev/zero")  # would never end
    text = in_thread(lambda: asyncio.run(m.job_log("a", "11")))["text"]
    assert text.count("(not shown: not a regular file of yours)") == 2
    assert "root:" not in text


async def test_a_fifo_log_does_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "job.out"
    os.mkfifo(path)
    assert in_thread(lambda: read_tail(path, 1000)) == "(not shown: not a regular file of yours)"


async def test_a_10_gb_sparse_log_is_read_only_at_its_tail(tmp_path: Path) -> None:
    path = tmp_path / "job.out"
    with open(path, "wb") as f:
        f.truncate(10 * 1024**3)
        f.write(b"first line\n")
        f.seek(0, os.SEEK_END)
        f.write(b"the last words\n")
    text = read_tail(path, 1000)
    assert text is not None and len(text) <= 1000 and text.endswith("the last words\n") and "first line" not in text


async def test_a_missing_log_is_none(tmp_path: Path) -> None:
    assert read_tail(tmp_path / "nothing.out", 1000) is None


async def test_rest_and_the_scheduler_refuse_one_more_than_the_cap_in_the_same_words(tmp_path: Path) -> None:
    """One cap (sandfill.lab.max-workers) for the REST API and a kernel's sandfill_scale /
    sandfill_adapt over the Dask comm."""
    cap = max_workers()
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=t\nNodeName=node1 NodeAddr=127.0.0.1 CPUs=8\n")
    with dask.config.set({"jobqueue.sandfill.shared-temp-directory": str(tmp_path / "tls"), "jobqueue.sandfill.log-directory": str(tmp_path / "logs")}):
        cluster = await BackfillSLURMCluster(slurm_conf=str(conf), asynchronous=True)
    try:
        m = manager(tmp_path / "connections")
        m._clusters["c"] = Managed("c", "c", None, {}, cluster)
        words = f"must be a whole number from 0 to {cap}, not {cap + 1}"
        with pytest.raises(BadRequest) as rest:
            await m.patch("c", {"scale": cap + 1})
        with pytest.raises(ValueError) as remote:
            await cluster._handle_scale(n=cap + 1)
        assert str(rest.value) == f"scale: {words}" and str(remote.value) == f"n: {words}"
        with pytest.raises(BadRequest, match=f"maximum: {words}"):
            await m.patch("c", {"adapt": {"minimum": 0, "maximum": cap + 1}})
        with pytest.raises(ValueError, match=f"maximum: {words}"):
            await cluster._handle_adapt(minimum=0, maximum=cap + 1)
        with pytest.raises(BadRequest, match=f"workers: {words}"):
            await m.create({"template": "small", "workers": cap + 1})
        assert cluster.target["n"] == 0 and m.list()[0]["id"] == "c"  # nothing changed
    finally:
        await cluster.close()


async def test_connection_files_are_private_and_never_written_through_a_symlink(tmp_path: Path) -> None:
    from distributed.security import Security

    conns = tmp_path / "connections"
    conns.mkdir(mode=0o755)
    conns.chmod(0o755)  # an old, loose directory
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (conns / "demo.json").symlink_to(victim)
    m = manager(conns)
    cluster = SimpleNamespace(scheduler_address="tls://127.0.0.1:1", security=Security.temporary())
    m._write_connection(Managed("abc", "demo", None, {}, cluster))  # type: ignore[arg-type]
    assert victim.read_text() == "untouched"
    path = conns / "demo.json"
    assert not path.is_symlink() and (path.stat().st_mode & 0o777) == 0o600
    assert (conns.stat().st_mode & 0o777) == 0o700 and ((conns / "abc").stat().st_mode & 0o777) == 0o700
    info = json.loads(path.read_text())
    for f in info["tls"].values():
        assert (Path(f).stat().st_mode & 0o777) == 0o600
