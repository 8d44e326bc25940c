"""sandfill.dask.job: the worker job script, with memory and walltimes as Slurm reads them
(no Slurm needed: the script is rendered, not submitted)."""

from __future__ import annotations

from typing import Any

import pytest

from sandfill.dask.job import BackfillSLURMJob


def job(**kw: Any) -> BackfillSLURMJob:
    return BackfillSLURMJob(scheduler="tcp://127.0.0.1:8786", name="w", cores=2, queue="burst", security=None, **kw)


def test_memory_is_slurm_memory_for_dask_and_slurm_alike() -> None:
    """"4G" is 4096 MiB: Slurm is asked for 4G and the worker's limit is 4 GiB (dask alone
    would read 4e9 bytes)."""
    j = job(memory="4G")
    script = j.job_script()
    assert "#SBATCH --mem=4G" in script and "--memory-limit 4.00GiB" in script
    assert j.shape()["memory_mb"] == 4096 and j.worker_memory == 4096 * 2**20
    script = job(memory="1500M", processes=2).job_script()
    assert "#SBATCH --mem=1500M" in script and "--memory-limit 750.00MiB" in script


def test_walltimes_are_slurm_durations() -> None:
    j = job(min_walltime="2:00", max_walltime="1:00:00", retire_margin="45s")
    assert (j.min_walltime, j.max_walltime, j.retire_margin) == (120, 3600, 45)
    script = j.job_script()
    assert "#SBATCH -t 00:02:00" in script and "#SBATCH --no-requeue" in script
    assert "export SANDFILL_LIFETIME=75\n" in script and "--lifetime ${SANDFILL_LIFETIME}s" in script  # 2 min - 45 s
    assert "squeue" not in script and "scontrol" not in script  # a worker job asks Slurm nothing
    j._set_walltime(1800, 600)
    assert "#SBATCH -t 00:30:00" in j.job_header and "#SBATCH --time-min=00:10:00" in j.job_header
    assert "export SANDFILL_LIFETIME=1755\n" in j.job_script()  # the walltime asked for - 45 s
    assert "#SBATCH -t 00:02:00" not in j.job_header


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"memory": "lots"}, "jobqueue.sandfill.memory: 'lots' is not an amount of memory"),
        ({"min_walltime": "1:2:3:4"}, "jobqueue.sandfill.min-walltime: '1:2:3:4' is not a duration"),
        ({"min_walltime": "10:00", "max_walltime": "5:00"}, "need 0 < min-walltime <= max-walltime, got 600 s and 300 s"),
        ({"min_walltime": "1:00"}, "retire-margin (60 s) must leave at least 10 s of the min-walltime (60 s)"),
    ],
)
def test_bad_settings_are_named(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError) as err:
        job(**kw)
    assert needle in str(err.value)


def test_the_sites_prologue_runs_first_in_every_worker_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub puts the site's prologue in the server job's environment
    (sandfill.hub.submit.SITE_PROLOGUE_ENV); dask reads it as jobqueue.sandfill.site-prologue,
    and each worker job runs it before the user's prologue and the worker."""
    import dask

    from sandfill.hub.submit import SITE_PROLOGUE_ENV

    lines = ["module load python/3.11", "source '/opt/site env/setup.sh'", 'conda activate "dask"']
    env = {SITE_PROLOGUE_ENV: repr(lines)}
    assert "site-prologue" not in dask.config.get("jobqueue.sandfill")  # nothing without the hub's variable
    assert "module load" not in job().job_script()
    read = dask.config.collect_env(env)["jobqueue"]["sandfill"]["site_prologue"]  # as dask reads DASK_*
    assert read == lines
    with dask.config.set({"jobqueue.sandfill.site_prologue": read}):
        script = job(job_script_prologue=["echo user"]).job_script()
    body = script.splitlines()
    at = [body.index(line) for line in [*lines, "echo user"]]
    assert at == sorted(at) and at[-1] < next(i for i, ln in enumerate(body) if "distributed.cli.dask_worker" in ln)


def test_every_worker_loads_the_sigterm_answer_and_the_shell_traps_sigterm() -> None:
    script = job().job_script()
    command = next(ln for ln in script.splitlines() if "distributed.cli.dask_worker" in ln)
    assert "--preload sandfill.dask.preemption --preload-nanny sandfill.dask.preemption" in command
    body = script.splitlines()
    trap = next(i for i, ln in enumerate(body) if ln.startswith("trap ") and ln.endswith(" TERM"))
    assert trap < body.index(command)


@pytest.mark.asyncio
async def test_on_sigterm_to_every_process_the_job_ends_only_after_its_worker_retired(tmp_path: Any) -> None:
    """The rendered script run by bash (no Slurm), given SIGTERM in every process as Slurm's
    process tracking sends it: the shell waits while the worker hands its data to another
    worker, and exits 0 once it has (without the trap bash dies at once, and under Slurm the
    job's end would kill the worker mid-retirement)."""
    import asyncio
    import os
    import signal
    import subprocess

    from distributed import Client, Scheduler, Worker

    from sandfill.slurm.commands import wait_until

    async with Scheduler(host="127.0.0.1", port=0, dashboard_address=None) as s, \
            Worker(s.address, name="other", nthreads=1) as other, \
            Client(s.address, asynchronous=True) as client:
        path = tmp_path / "job.sh"
        path.write_text(BackfillSLURMJob(scheduler=s.address, name="w", cores=1, queue="burst", security=None).job_script())
        out = tmp_path / "out"
        with open(out, "wb") as fh:
            shell = subprocess.Popen(["bash", str(path)], start_new_session=True, stdout=fh, stderr=subprocess.STDOUT,
                                     env={**os.environ, "SLURM_JOB_ID": "7"})
        try:
            await client.wait_for_workers(2, timeout=60)
            addr = next(a for a, ws in s.workers.items() if ws.name == "w")
            [data] = await client.scatter([list(range(100))], workers=[addr])
            os.killpg(shell.pid, signal.SIGTERM)
            await asyncio.to_thread(wait_until, "the job script exits", lambda: shell.poll() is not None, 60)
            assert [ws.name for ws in s.workers.values()] == ["other"]  # retired before the shell ended
            assert {ts.key for ts in s.workers[other.address].has_what} == {data.key}
            assert shell.returncode == 0
            assert "sandfill: job 7: SIGTERM: its workers retire gracefully" in out.read_text()
            assert await client.gather(data) == list(range(100))
        finally:
            if shell.poll() is None:
                os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
