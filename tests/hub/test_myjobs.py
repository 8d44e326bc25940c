"""``sandfill.hub.myjobs`` ("My jobs") against stand-in ``squeue``/``scancel`` programs that
answer with Slurm 22.05's recorded ``squeue --json`` (``tests/slurm/data``), or hang; and
the live routes (``slurm``-marked) against the session hub."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sandfill.dev.testing import TestSlurm, queue_rpcs
from sandfill.hub import myjobs as myjobs_mod
from sandfill.hub.myjobs import MyJobs, NotYourJob
from sandfill.slurm.commands import SlurmCommandError, wait_until

DATA = Path(__file__).parent.parent / "slurm" / "data" / "squeue_user_jobs.json"


def _program(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {bindir}/calls\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A bin directory first on PATH with ``squeue`` printing the recorded JSON and
    ``scancel`` doing nothing; ``calls`` lists every run."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _program(bindir, "squeue", f"cat {DATA}")
    _program(bindir, "scancel", "exit 0")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    yield bindir


def calls(bindir: Path) -> list[str]:
    f = bindir / "calls"
    return [line.split(" ", 1)[1] for line in f.read_text().splitlines()] if f.exists() else []


def lookups(**kw: Any) -> MyJobs:
    return MyJobs(cancel_prefix=[], **kw)


def test_many_pages_at_once_share_one_squeue_within_the_cache_time(fake_slurm: Path) -> None:
    mj = lookups(cache_seconds=30)

    async def main() -> list[list[Any]]:
        return list(await asyncio.gather(*(mj.jobs("sftest-ada", None) for _ in range(20))))

    answers = asyncio.run(main())
    assert all([j.status.job_id for j in a] == ["50", "72", "74", "80_2"] for a in answers)
    asyncio.run(mj.jobs("sftest-ada", None))
    assert calls(fake_slurm) == ["--json -u sftest-ada"] and mj.queries == 1
    mj.forget("sftest-ada", None)
    asyncio.run(mj.jobs("sftest-ada", None))
    assert mj.queries == 2


def test_a_hung_controller_is_reported_in_bounded_time_and_cached(fake_slurm: Path) -> None:
    _program(fake_slurm, "squeue", "exec sleep 60")  # a controller that never answers
    mj = lookups(cache_seconds=30, squeue_timeout=1)

    async def ask() -> None:
        await asyncio.wait_for(mj.jobs("sftest-ada", None), 15)

    for _ in range(2):
        with pytest.raises(SlurmCommandError, match="Slurm did not answer within 1 s"):
            asyncio.run(ask())
    assert mj.queries == 1  # the second page did not wait for the controller again


def test_squeue_output_that_is_not_json_is_an_error_naming_it(fake_slurm: Path) -> None:
    _program(fake_slurm, "squeue", "echo 'garbage|line'")
    with pytest.raises(SlurmCommandError, match="squeue --json printed no job list: 'garbage"):
        asyncio.run(lookups().jobs("sftest-ada", None))


def test_rows_have_kinds_and_the_one_job_views_facts(fake_slurm: Path) -> None:
    mj = lookups()
    jobs = asyncio.run(mj.jobs("sftest-ada", None))
    rows = {r["job_id"]: r for r in mj.rows(jobs, {"74"}, "/hub/api/sandfill/users/sftest-ada/jobs", now=1796148300)}
    assert {k: r["kind"] for k, r in rows.items()} == {"50": "dask-worker", "72": "batch", "74": "server", "80_2": "batch"}
    pend = rows["74"]
    assert pend["phase"] == "pending" and pend["reason_text"] == "waiting for free resources"
    assert pend["estimated_start"] == 1796149000 and pend["time_left"] is None
    run = rows["72"]
    assert run["phase"] == "running" and run["name"] == "evil\n99|RUNNING|None|node1" and run["node"] == "node[1-2]"
    assert run["log_url"] == "/hub/api/sandfill/users/sftest-ada/jobs/72/log"
    assert run["cancel_url"] == "/hub/api/sandfill/users/sftest-ada/jobs/72"


def test_cancel_refuses_a_job_that_is_not_the_users_and_runs_nothing(fake_slurm: Path) -> None:
    mj = lookups()
    for job_id in ("29", "12345"):  # sftest-bob's job, and a job not in the queue
        with pytest.raises(NotYourJob, match=f"job {job_id} is not one of sftest-ada's jobs"):
            asyncio.run(mj.cancel("sftest-ada", job_id, None))
    with pytest.raises(ValueError, match="not a Slurm job id: '29;ls'"):
        asyncio.run(mj.cancel("sftest-ada", "29;ls", None))
    assert not [c for c in calls(fake_slurm) if not c.startswith("--json")]  # no scancel ran


def test_cancel_asks_the_queue_afresh_and_runs_scancel_as_the_owner(fake_slurm: Path) -> None:
    assert MyJobs().cancel_prefix == ["sudo", "-E", "-u", "{username}"]
    _program(fake_slurm, "scancel", f"env > {fake_slurm}/scancel.env")
    mj = MyJobs(cancel_prefix=["env", "SANDFILL_AS={username}"], cache_seconds=30)
    asyncio.run(mj.jobs("sftest-ada", None))
    job = asyncio.run(mj.cancel("sftest-ada", "72", None))
    assert job.status.job_id == "72"
    assert calls(fake_slurm) == ["--json -u sftest-ada", "--json -u sftest-ada", "72"]
    assert mj.queries == 2  # the cancel did not trust the cached list
    env = dict(line.split("=", 1) for line in (fake_slurm / "scancel.env").read_text().splitlines() if "=" in line)
    assert env["SANDFILL_AS"] == "sftest-ada"
    assert not set(env) - {"SANDFILL_AS", "PATH", "PWD", "SHLVL", "_", "LANG", "LC_ALL"}, env  # none of the hub's


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sftest-ada``'s home is a temporary directory owned by whoever runs the tests."""
    home = tmp_path / "home"
    home.mkdir()
    real = pwd.getpwnam

    def getpwnam(name: str) -> Any:
        if name != "sftest-ada":
            return real(name)
        me = pwd.getpwuid(os.getuid())
        return pwd.struct_passwd((name, "x", me.pw_uid, me.pw_gid, "", str(home), "/bin/sh"))

    monkeypatch.setattr(myjobs_mod.pwd, "getpwnam", getpwnam)
    return home


def _job_with_log(path: str) -> Any:
    from sandfill.slurm.squeue import UserJob
    from sandfill.slurm.states import JobStatus

    return UserJob(JobStatus("72", "RUNNING", user="sftest-ada"), path, True)


def test_the_log_is_followed_from_an_offset_and_capped(home: Path) -> None:
    mj = lookups(log_chunk_bytes=1024)
    log = home / "slurm-72.out"
    log.write_text("start\n")
    job = _job_with_log(str(log))
    first = asyncio.run(mj.log_chunk("sftest-ada", job, -1))
    assert (first["text"], first["start"], first["offset"], first["error"]) == ("start\n", 0, 6, None)
    with log.open("a") as f:
        f.write("x" * 5000)
    nxt = asyncio.run(mj.log_chunk("sftest-ada", job, first["offset"]))
    assert nxt["start"] == 6 and len(nxt["text"]) == 1024 and nxt["size"] == 5006 and nxt["offset"] == 1030
    assert asyncio.run(mj.log_chunk("sftest-ada", _job_with_log(str(home / "none")), 0))["error"] == "no log yet"


def test_a_log_outside_the_home_a_symlink_a_fifo_or_another_owners_file_is_refused(home: Path, tmp_path: Path) -> None:
    mj = lookups()
    outside = tmp_path / "elsewhere.log"
    outside.write_text("secret\n")
    (home / "link.log").symlink_to("/etc/shadow")
    os.mkfifo(home / "fifo.log")
    cases = {
        str(outside): "is not in sftest-ada's home",
        str(home / "link.log"): "symbolic link",
        str(home / "fifo.log"): "not a regular file",
        str(home / ".." / "elsewhere.log"): "is not in sftest-ada's home",
    }
    if os.getuid() == 0:
        foreign = home / "foreign.log"
        foreign.write_text("theirs\n")
        os.chown(foreign, 65534, 65534)
        cases[str(foreign)] = "not owned by sftest-ada"
    for path, why in cases.items():
        got = asyncio.run(mj.log_chunk("sftest-ada", _job_with_log(path), 0))
        assert why in (got["error"] or "") and got["text"] == "", (path, got)
    assert stat.S_ISFIFO(os.stat(home / "fifo.log").st_mode)  # left as it was


# ---- live: the routes of the session hub on the devcluster ---------------------------------


def _counting_script(lines: int) -> str:
    """A batch job whose log grows by a line a second (its payload, not a test's wait)."""
    return f"#!/bin/sh\nfor i in $(seq 1 {lines}); do echo \"line $i\"; sleep 1; done\n"


def submit_as(slurm_conf: str, user: str, name: str, lines: int = 120) -> str:
    """sbatch as ``user`` (sudo), the log in the user's home."""
    home = pwd.getpwnam(user).pw_dir
    as_user = TestSlurm(slurm_conf, prefix=["sudo", "-E", "-u", user])
    return as_user.submit_sync(_counting_script(lines), ["-p", "batch", "-t", "5", "-J", name, "-D", home, "-o", f"{home}/myjobs-%j.out"])


@pytest.mark.slurm
def test_my_jobs_live_lists_follows_and_cancels_and_refuses_another_user(clean_servers: Any, slurm: Any) -> None:
    hub = clean_servers
    ada, bob = "sftest-ada", "sftest-bob"
    conf = str(slurm.slurm_conf)
    mine = submit_as(conf, ada, "ada's analysis")
    worker = submit_as(conf, ada, "sandfill-worker-x1", lines=1)  # named as the cluster names its jobs
    theirs = submit_as(conf, bob, "bob's")

    status, body = hub.api("GET", f"/sandfill/users/{ada}/jobs", ada)
    assert status == 200 and body["error"] is None, body
    rows = {r["job_id"]: r for r in body["jobs"]}
    assert rows[mine]["kind"] == "batch" and rows[mine]["name"] == "ada's analysis"
    assert rows[worker]["kind"] == "dask-worker" and theirs not in rows
    log_url = f"/sandfill/users/{ada}/jobs/{mine}/log"
    assert rows[mine]["log_url"] == "/hub/api" + log_url

    # 20 pages refreshing at once cost the controller one squeue (a few if the cache expired
    # meanwhile or the hub polled its own jobs), not 20
    before = queue_rpcs(slurm.sdiag_rpcs_sync())
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _i: hub.api("GET", f"/sandfill/users/{ada}/jobs", ada)[0], range(20)))
    spent = queue_rpcs(slurm.sdiag_rpcs_sync()) - before
    print(f"20 concurrent 'My jobs' calls: {spent} queue RPC(s) at the controller")
    assert answers == [200] * 20 and spent <= 3, spent

    def log_has(n: int) -> Any:
        st, chunk = hub.api("GET", f"{log_url}?offset=-1", ada)
        return st == 200 and f"line {n}\n" in chunk["text"] and chunk

    first = wait_until("ada's log to show line 2", lambda: log_has(2), timeout=60)
    grown = wait_until("ada's log to grow", lambda: (c := hub.api("GET", f"{log_url}?offset={first['offset']}", ada)[1])["text"] and c, timeout=30)
    assert grown["start"] == first["offset"] and grown["text"].startswith("line ")

    # bob: 403 for ada's name and for ada's job id under his own name, read or cancel
    for path in (f"/sandfill/users/{ada}/jobs", log_url, f"/sandfill/users/{bob}/jobs/{mine}/log",
                 f"/sandfill/users/{ada}/provenance", f"/sandfill/users/{ada}/provenance/{mine}"):
        assert hub.api("GET", path, bob)[0] == 403, path
    for path in (f"/sandfill/users/{ada}/jobs/{mine}", f"/sandfill/users/{bob}/jobs/{mine}"):
        assert hub.api("DELETE", path, bob)[0] == 403, path
    assert slurm.squeue_sync([mine])[mine].state in {"PENDING", "RUNNING"}  # nothing was cancelled
    assert hub.api("DELETE", f"/sandfill/users/{ada}/jobs/{theirs}", ada)[0] == 403
    assert slurm.squeue_sync([theirs])[theirs].state in {"PENDING", "RUNNING"}
    assert hub.api("GET", f"{log_url}?offset=x", ada)[0] == 400

    status, body = hub.api("DELETE", f"/sandfill/users/{ada}/jobs/{mine}", ada)
    assert status == 200, body
    wait_until("ada's job to be cancelled", lambda: slurm.squeue_sync([mine]).get(mine, None) is None
               or slurm.squeue_sync([mine])[mine].state == "CANCELLED", timeout=30)
