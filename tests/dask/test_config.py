"""sandfill.dask.config: settings resolve kwarg → dask.config → packaged YAML, and durations
and memory are read by sandfill.units ("2:00" is two minutes, "4G" is 4096 MiB)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dask
import pytest
import yaml

from sandfill.dask.config import memory_mib, seconds, setting


@pytest.mark.parametrize(
    "value,expected",
    [("2:00", 120), ("00:05:00", 300), ("1:00:00", 3600), ("1-00", 86400), (5, 300), ("5", 300), ("90s", 90), ("90m", 5400), ("2h", 7200)],
)
def test_durations_follow_slurm(value: Any, expected: int) -> None:
    assert seconds("retire-margin", value) == expected


@pytest.mark.parametrize("value", ["-", "1-", "1:2:3:4", "soon", 1.5, True])
def test_bad_durations_name_the_key_and_the_value(value: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(f"jobqueue.sandfill.min-walltime: {value!r}")):
        seconds("min-walltime", value)


def test_dask_config_and_environment_are_read_the_same_way() -> None:
    assert seconds("min-walltime") == 300 and seconds("retire-margin") == 60  # the packaged defaults
    with dask.config.set({"jobqueue.sandfill.replace-ahead": "2:00"}):
        assert seconds("replace-ahead") == 120
    assert setting("queue", "burst") == "burst"


def test_memory_follows_slurm() -> None:
    assert memory_mib("memory") == 2048  # packaged 2GiB
    assert [memory_mib("memory", v) for v in ("4G", "4GB", "4GiB", "512M", 512, "1T")] == [4096, 4096, 4096, 512, 512, 1024**2]
    with pytest.raises(ValueError, match="jobqueue.sandfill.memory: 'lots' is not an amount of memory"):
        memory_mib("memory", "lots")


def test_no_packaged_duration_is_a_bare_number() -> None:
    """A bare number is minutes now: the packaged YAML writes every sandfill duration with
    its unit or in Slurm's clock form (death-timeout is dask-worker's own option)."""
    packaged = yaml.safe_load((Path(__file__).resolve().parents[2] / "extensions/dask/sandfill.yaml").read_text())
    settings = packaged["jobqueue"]["sandfill"]
    for key in ("min-walltime", "max-walltime", "retire-margin", "replace-ahead", "probe-cache-ttl", "keeper-interval", "lost-worker-grace"):
        assert isinstance(settings[key], str), key
        seconds(key)
    for t in packaged["sandfill"]["lab"]["templates"]:
        assert isinstance(t["min_walltime"], str) and isinstance(t["max_walltime"], str)
        memory_mib("memory", t["memory"])


def test_under_jupyterhub_a_notebooks_client_links_the_dashboard_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel of a server the hub started has JUPYTERHUB_SERVICE_PREFIX: ``Client.dashboard_link``
    (a client by address, as ``sandfill.dask.connect`` makes, or of a cluster object) is the
    Jupyter proxy's path, not 127.0.0.1:<port>. Outside JupyterHub, and when the user set a
    link of their own, the link is left alone."""
    from distributed import Client, LocalCluster

    from sandfill.dask.config import STOCK_DASHBOARD_LINK, proxy_dashboard_link

    with dask.config.set({"distributed.dashboard.link": STOCK_DASHBOARD_LINK}):
        monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
        proxy_dashboard_link()
        assert dask.config.get("distributed.dashboard.link") == STOCK_DASHBOARD_LINK
        monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/sftest-ada/")
        proxy_dashboard_link()
        with LocalCluster(n_workers=0, processes=False, dashboard_address="127.0.0.1:0") as cluster:
            with Client(cluster.scheduler_address) as by_address, Client(cluster) as of_cluster:
                port = by_address.scheduler_info()["services"]["dashboard"]
                assert by_address.dashboard_link == f"/user/sftest-ada/proxy/{port}/status"
                assert of_cluster.dashboard_link == f"/user/sftest-ada/proxy/{port}/status"
    with dask.config.set({"distributed.dashboard.link": "https://dask.example/{port}"}):
        proxy_dashboard_link()
        assert dask.config.get("distributed.dashboard.link") == "https://dask.example/{port}"
