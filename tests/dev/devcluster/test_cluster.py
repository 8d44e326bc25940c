"""The devcluster's state directory without booting it: folders of their modes (loose ones
tightened, symlinks refused), configuration and secret files written through
``sandfill.files.write_private`` (an attacker's symlink is replaced, never written through),
and MariaDB's tmpdir inside the state directory."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sandfill.dev.devcluster import DevCluster
from sandfill.dev.devcluster.boot import _own_file
from sandfill.dev.devcluster.cluster import ClusterInfo
from sandfill.dev.devcluster.config import Ports
from sandfill.files import UnsafePath

PORTS = Ports(17000, 17001, 17002, (17003, 17004))


def _info() -> ClusterInfo:
    return ClusterInfo("sandfill", "host", 2, 4, 1000, {"slurmctld": 17000}, None, ["root"], "s3cret-db-pass")


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_folders_get_their_modes_even_when_they_existed_loose(tmp_path: Path) -> None:
    c = DevCluster(tmp_path / "dc")
    for d in ("etc", "log", "ctld-state"):
        (tmp_path / "dc" / d).mkdir(parents=True)
        (tmp_path / "dc" / d).chmod(0o777)
    c._make_dirs(["node1", "node2"])
    r = c.layout
    assert {_mode(d) for d in (r.root, r.etc, r.spool, r.spool / "node2")} == {0o755}
    assert {_mode(d) for d in (r.log, r.state, r.mariadb_data, r.mariadb_tmp)} == {0o700}


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "dc").mkdir()
    (tmp_path / "dc" / "etc").symlink_to(elsewhere)
    with pytest.raises(UnsafePath, match="etc"):
        DevCluster(tmp_path / "dc")._make_dirs(["node1", "node2"])


def test_secrets_are_private_and_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    c = DevCluster(tmp_path / "dc")
    c._make_dirs(["node1", "node2"])
    r = c.layout
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    r.slurmdbd_conf.symlink_to(victim)
    r.info.symlink_to(victim)
    c._write_configs(_info(), PORTS)
    assert victim.read_text() == "untouched"
    for secret in (r.slurmdbd_conf, r.info):
        assert stat.S_ISREG(os.lstat(secret).st_mode) and _mode(secret) == 0o600
    assert "StoragePass=s3cret-db-pass" in r.slurmdbd_conf.read_text()
    assert json.loads(r.info.read_text())["db_pass"] == "s3cret-db-pass"
    assert {_mode(p) for p in (r.slurm_conf, r.policy_conf, r.etc / "mariadb.cnf")} == {0o644}
    assert not [p.name for p in r.etc.iterdir() if p.name.endswith(".tmp")]


def test_mariadb_has_its_own_tmpdir(tmp_path: Path) -> None:
    c = DevCluster(tmp_path / "dc")
    c._make_dirs(["node1", "node2"])
    c._write_configs(_info(), PORTS)
    assert f"tmpdir={c.layout.mariadb_tmp}\n" in (c.layout.etc / "mariadb.cnf").read_text()
    assert str(c.layout.mariadb_tmp).startswith(str(c.layout.root) + "/")


def test_the_munge_key_is_remade_unless_it_is_our_own_0400_file(tmp_path: Path) -> None:
    key = tmp_path / "munge.key"
    assert not _own_file(key, 0o400)
    key.write_bytes(b"k" * 1024)
    key.chmod(0o644)
    assert not _own_file(key, 0o400)
    key.chmod(0o400)
    assert _own_file(key, 0o400)
    link = tmp_path / "link.key"
    link.symlink_to(key)
    assert not _own_file(link, 0o400)


def test_users_see_only_their_own_jobs_unless_the_queue_is_shared(tmp_path: Path) -> None:
    c = DevCluster(tmp_path / "dc")
    c._make_dirs(["node1", "node2"])
    c._write_configs(_info(), PORTS)
    assert "\nPrivateData=jobs,usage,users\n" in c.slurm_conf.read_text()  # the default
    shared = _info()
    shared.private_data = False
    c._write_configs(shared, PORTS)
    assert "\nPrivateData=" not in c.slurm_conf.read_text()
    assert json.loads(c.layout.info.read_text())["private_data"] is False


def _hosts_info() -> ClusterInfo:
    from dataclasses import asdict

    from sandfill.dev.devcluster import nodeclasses

    specs = nodeclasses.nodes_of(nodeclasses.DEFAULT_HOSTS)
    info = ClusterInfo("sandfill", "headhost", 4, 8, 8000, {"slurmctld": 17000}, None, ["root"], "pw")
    info.shape, info.node_specs, info.head_addr = "hosts", [asdict(n) for n in specs], "198.18.7.1"
    info.node_addrs = {n.name: f"198.18.7.{i}" for i, n in enumerate(specs, start=2)}
    return info


def _node_lines(conf: str) -> dict[str, dict[str, str]]:
    rows = [dict(kv.split("=", 1) for kv in line.split()) for line in conf.splitlines() if line.startswith("NodeName=")]
    return {r["NodeName"]: r for r in rows}


def test_the_hosts_shape_gives_each_node_its_address_features_and_gres(tmp_path: Path) -> None:
    c = DevCluster(tmp_path / "dc")
    info = _hosts_info()
    c._make_dirs([n.name for n in info.specs()])
    c._write_configs(info, Ports(17000, 17001, 17002, (17003, 17004, 17005, 17006)))
    conf = c.slurm_conf.read_text()
    nodes = _node_lines(conf)
    addrs = [n["NodeAddr"] for n in nodes.values()]
    assert list(nodes) == ["cpu1", "cpu2", "bigmem1", "gpu1"]
    assert len(set(addrs)) == 4 and "127.0.0.1" not in addrs
    assert {n: r.get("Feature") for n, r in nodes.items()} == {"cpu1": "cpu", "cpu2": "cpu", "bigmem1": "bigmem", "gpu1": "gpu"}
    assert nodes["gpu1"]["Gres"] == "gpu:2" and not any("Gres" in nodes[n] for n in ("cpu1", "cpu2", "bigmem1"))
    assert "\nSlurmctldHost=headhost(198.18.7.1)\n" in conf and "\nAccountingStorageHost=198.18.7.1\n" in conf
    assert "\nGresTypes=gpu\n" in conf
    assert "DbdAddr=198.18.7.1\n" in c.layout.slurmdbd_conf.read_text()
    gres = c.layout.gres_conf.read_text()
    dev = c.layout.gpu_devices / "gpu1"
    assert f"NodeName=gpu1 Name=gpu File={dev}/nvidia[0-1]\n" in gres and gres.count("NodeName=") == 1
    for f in (dev / "nvidia0", dev / "nvidia1"):  # stand-ins Slurm stats: char devices (/dev/null's numbers)
        st = os.lstat(f)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and _mode(f) == 0o600
    assert "Nodes=cpu[1-2],bigmem1,gpu1" in c.layout.policy_conf.read_text()
    assert c.node_addresses() == {"cpu1": "198.18.7.2", "cpu2": "198.18.7.3", "bigmem1": "198.18.7.4", "gpu1": "198.18.7.5"}


def test_a_planted_file_at_a_gpu_stand_in_is_replaced_not_followed(tmp_path: Path) -> None:
    c = DevCluster(tmp_path / "dc")
    info = _hosts_info()
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (c.layout.gpu_devices / "gpu1").mkdir(parents=True)
    (c.layout.gpu_devices / "gpu1" / "nvidia0").symlink_to(victim)
    c._make_dirs([n.name for n in info.specs()])
    c._write_configs(info, Ports(17000, 17001, 17002, (17003, 17004, 17005, 17006)))
    assert victim.read_text() == "untouched"
    assert stat.S_ISCHR(os.lstat(c.layout.gpu_devices / "gpu1" / "nvidia0").st_mode)


def test_the_single_host_shape_is_unchanged(tmp_path: Path) -> None:
    c = DevCluster(tmp_path / "dc")
    c._make_dirs(["node1", "node2"])
    c._write_configs(_info(), PORTS)
    conf = c.slurm_conf.read_text()
    nodes = _node_lines(conf)
    assert list(nodes) == ["node1", "node2"] and {r["NodeAddr"] for r in nodes.values()} == {"127.0.0.1"}
    assert not any("Feature" in r or "Gres" in r for r in nodes.values())
    assert "\nSlurmctldHost=host(127.0.0.1)\n" in conf and "\nGresTypes=" not in conf
    assert "Nodes=node[1-2]" in c.layout.policy_conf.read_text()
    assert c.node_addresses() == {"node1": "127.0.0.1", "node2": "127.0.0.1"}
    assert DevCluster(tmp_path / "never").node_addresses() == {}
