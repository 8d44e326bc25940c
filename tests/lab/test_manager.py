"""sandfill.lab.manager without a Jupyter server or Slurm: bodies are read with
sandfill.units ("2:00" is two minutes, "4G" is 4096 MiB) and bad values are BadRequest
(400) naming the field, before anything is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandfill.lab.manager import BadRequest, ClusterManager, NotFound
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
        ("qos", "a b", "qos: 'a b' is not a valid Slurm name"),
        ("partition", "burst\n", "partition: 'burst\\n' is not a valid Slurm name"),
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
        ({"template": "small", "workers": -1}, "workers: must be from 0 to"),
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
