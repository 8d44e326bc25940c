"""sandfill.units: one vocabulary for time and memory, as Slurm writes them."""

from __future__ import annotations

import pytest

from sandfill import units
from sandfill.units import Duration, UnitError

DURATIONS = [
    # Slurm's own forms (sbatch --time)
    ("2", 120),
    ("2:00", 120),  # MM:SS: two minutes, as in Slurm
    ("02:00:00", 7200),
    ("1-0", 86400),
    ("1-02", 93600),
    ("1-02:30", 95400),
    ("1-02:30:15", 95415),
    ("90:00", 5400),
    # friendly forms
    ("90m", 5400),
    ("90min", 5400),
    ("2h", 7200),
    ("1.5h", 5400),
    ("2 hours", 7200),
    ("1d", 86400),
    ("45s", 45),
    (" 30 ", 1800),
    # a bare number means minutes, as in Slurm
    (30, 1800),
    (0, 0),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text: object, seconds: int) -> None:
    assert units.parse_duration(text) == seconds


BAD_DURATIONS = ["", "-", "1-", "1:2:3:4", "2:60", "1-24", "abc", "2x", "2:00\n", "٣", "1.5", "-5", "10000d"]


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_bad_durations_name_the_key_and_the_value(text: str) -> None:
    with pytest.raises(UnitError) as exc:
        units.parse_duration(text, key="walltime")
    msg = str(exc.value)
    assert msg.startswith("walltime: ") and repr(text) in msg


@pytest.mark.parametrize("value", [True, 1.5, None, [1], {"a": 1}])
def test_durations_refuse_other_types(value: object) -> None:
    with pytest.raises(UnitError, match="is not a duration"):
        units.parse_duration(value)


def test_positive_refuses_zero_and_the_wording_is_shared() -> None:
    with pytest.raises(UnitError, match="must be longer than zero"):
        units.parse_duration("0", positive=True)
    with pytest.raises(UnitError) as a:
        units.parse_duration("soon", key="x")
    with pytest.raises(UnitError) as b:
        Duration.parse("soon", key="x")
    assert str(a.value) == str(b.value)


def test_slurm_output_times() -> None:
    assert units.parse_slurm_time("UNLIMITED") is None
    assert units.parse_slurm_time("N/A") is None
    assert units.parse_slurm_time("1-00:00:00") == 86400
    assert units.parse_slurm_time("30:00") == 1800
    assert units.parse_slurm_time("garbage") is None


@pytest.mark.parametrize(("seconds", "text"), [(0, "00:00:00"), (61, "00:01:01"), (7200, "02:00:00"), (90061, "1-01:01:01")])
def test_format_round_trips(seconds: int, text: str) -> None:
    assert units.format_duration(seconds) == text
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize(("seconds", "words"), [(120, "2 minutes"), (3600, "1 hour"), (5400, "1 hour 30 minutes"), (90061, "1 day 1 hour"), (0, "0 seconds")])
def test_describe_duration(seconds: int, words: str) -> None:
    assert units.describe_duration(seconds) == words


MEMORY = [("4G", 4096), ("4GB", 4096), ("4GiB", 4096), ("4g", 4096), ("512M", 512), ("512", 512), (512, 512), ("1T", 1024**2), ("1.5G", 1536), ("1024K", 1), ("1K", 1)]


@pytest.mark.parametrize(("text", "mib"), MEMORY)
def test_memory(text: object, mib: int) -> None:
    assert units.parse_memory(text) == mib


@pytest.mark.parametrize("text", ["", "lots", "4X", "-1G", "0", "4 G B", "4G\n", True, 1.5])
def test_bad_memory_names_the_key(text: object) -> None:
    with pytest.raises(UnitError) as exc:
        units.parse_memory(text, key="memory")
    assert str(exc.value).startswith("memory: ")


def test_memory_formats() -> None:
    assert units.format_memory(4096) == "4G"
    assert units.format_memory(1500) == "1500M"
    assert units.describe_memory(4096) == "4 GiB"
    assert units.describe_memory(1536) == "1.5 GiB"
    assert units.describe_memory(512) == "512 MiB"


def test_timestamps() -> None:
    t = units.parse_timestamp("2026-11-21T09:04:22")
    assert t is not None and units.parse_timestamp("N/A") is None and units.parse_timestamp("Unknown") is None
    assert units.parse_timestamp("2026-11-21T09:04:23") == t + 1
