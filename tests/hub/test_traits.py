"""The spawner's unit-bearing traitlets (sandfill.hub.traits), and the one config path from the
site file to the spawner: typed values, read once (no Slurm needed)."""

from __future__ import annotations

import pytest
from traitlets import HasTraits, TraitError
from traitlets.config import Config

from sandfill.hub.config import apply_site
from sandfill.hub.site import Profile, site_from_dict
from sandfill.hub.spawner import BackfillSlurmSpawner
from sandfill.hub.traits import Memory, Profiles, SlurmNames, Walltime
from sandfill.units import Duration


class Holder(HasTraits):
    walltime = Walltime("1h")
    memory = Memory("1G")
    partitions = SlurmNames(["interactive"])
    profiles = Profiles([])


@pytest.mark.parametrize(("value", "seconds"), [("2:00", 120), ("02:00:00", 7200), ("2h", 7200), (90, 5400), (Duration(45), 45), ("1-00", 86400)])
def test_walltime_trait_reads_slurm_syntax(value: object, seconds: int) -> None:
    h = Holder()
    h.walltime = value
    assert h.walltime == Duration(seconds)
    h.walltime = h.walltime  # validating again changes nothing (traitlets does on config load)
    assert h.walltime.seconds == seconds


@pytest.mark.parametrize(("value", "mib"), [("4G", 4096), ("4GiB", 4096), (512, 512), ("1500M", 1500)])
def test_memory_trait_reads_slurm_syntax(value: object, mib: int) -> None:
    h = Holder()
    h.memory = value
    assert h.memory == mib
    h.memory = h.memory
    assert h.memory == mib


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("walltime", "forever", "walltime: 'forever' is not a duration (use MM, MM:SS"),
        ("walltime", "0:00", "walltime: '0:00' must be longer than zero"),
        ("memory", "lots", "memory: 'lots' is not an amount of memory"),
        ("partitions", ["ok", "not ok"], "partitions: 'not ok' is not a Slurm name"),
        ("partitions", [], "partitions: [] is not a non-empty list"),
        ("profiles", [{"name": "x", "cpu": 1, "memory": "1G", "walltime": "1h"}], "cpu: unknown key; did you mean 'cpus'?"),
    ],
)
def test_bad_values_name_the_trait_and_value(name: str, value: object, words: str) -> None:
    with pytest.raises(TraitError) as exc:
        setattr(Holder(), name, value)
    assert words in str(exc.value)


def test_profiles_trait_takes_site_profiles_or_dicts() -> None:
    h = Holder()
    h.profiles = [{"name": "p", "cpus": 2, "memory": "2G", "walltime": "2:00"}]
    assert h.profiles == [Profile(name="p", cpus=2, memory=2048, walltime="2:00")]
    assert h.profiles[0].walltime == 120


def test_site_values_reach_the_spawner_typed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    site = site_from_dict(
        {
            "state_dir": str(tmp_path),
            "max_walltime": "2:00",  # two minutes
            "walltime_warning": "1:00",
            "max_memory": "4G",
            "partitions": ["a", "b"],
            "default_partition": "a",
            "profiles": [{"name": "p", "cpus": 1, "memory": 1024, "walltime": "1:30"}],
            "poll_interval": "2s",
            "start_timeout": "5m",
        }
    )
    c = Config()
    apply_site(c, site)
    sp = BackfillSlurmSpawner(config=c)
    assert sp.max_walltime.seconds == 120 and sp.walltime_warning.seconds == 60 and sp.max_memory == 4096
    assert sp.partitions == ["a", "b"] and sp.default_partition == "a"
    assert sp.profiles == list(site.profiles) and sp.profiles[0].walltime == 90
    assert sp.poll_interval == 2 and sp.start_timeout == 300


def test_spawner_defaults() -> None:
    sp = BackfillSlurmSpawner()
    assert sp.max_walltime.seconds == 8 * 3600 and sp.walltime_warning.seconds == 600 and sp.max_memory == 32768
    assert [p.name for p in sp.profiles] == ["small", "medium", "large"]
    with pytest.raises(TraitError):
        sp.pending_refresh = 0
    with pytest.raises(TraitError):
        sp.max_cpus = 0
