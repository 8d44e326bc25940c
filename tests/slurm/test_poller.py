"""The shared queue poller: one squeue for many jobs, UNKNOWN (not gone) on outages."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, booted_devcluster, queue_rpcs, sleep_script
from sandfill.slurm import GONE, UNKNOWN, JobStatus, QueuePoller, SlurmClient, scontrol, squeue
from sandfill.slurm.commands import Result, Runner, SlurmCommandError, wait_until

TEST_POLICY = Path(__file__).resolve().parents[1] / "data" / "devcluster-policy.yaml"


@pytest.fixture
def private_cluster() -> Iterator[DevCluster]:
    """A devcluster of this test's own: sdiag then counts only this test's queries (the
    session cluster is polled by other tests' processes, the hub's for one)."""
    with booted_devcluster("sandfill-poller-", nodes=1, cpus=4, policy=TEST_POLICY) as c:
        yield c


@pytest.mark.slurm
@pytest.mark.asyncio
async def test_one_squeue_serves_many_jobs(private_cluster: DevCluster) -> None:
    slurm = TestSlurm(private_cluster.slurm_conf)
    ids = [slurm.submit_sync(sleep_script(300), ["-c", "1", "-p", "batch", "-t", "5"]) for _ in range(20)]
    poller = QueuePoller(slurm, fast_interval=3600, slow_interval=3600)
    try:
        poller.watch(ids)
        await poller.refresh()  # first round after watch
        # One round = one squeue RPC for all 20 jobs. Anything else (a client-side RPC retry on
        # a loaded machine was seen once in CI) can only add RPCs, so up to three rounds are
        # measured and the fewest counts; a per-job poller would show 20 in every round.
        rpcs = []
        for _ in range(3):
            before = queue_rpcs(slurm.sdiag_rpcs_sync())
            polls_before = poller.stats.polls
            snap = await poller.refresh()
            after = queue_rpcs(slurm.sdiag_rpcs_sync())
            assert poller.stats.polls - polls_before == 1
            rpcs.append(after - before)
            if rpcs[-1] == 1:
                break
        assert min(rpcs) == 1, f"one squeue RPC must serve all 20 watched jobs (rounds: {rpcs})"
        assert set(snap) == set(ids)
        assert all(s.known and (s.running or s.pending) for s in snap.values())
        # many concurrent refreshes share rounds: far fewer squeues than callers
        before = queue_rpcs(slurm.sdiag_rpcs_sync())
        await asyncio.gather(*(poller.refresh() for _ in range(30)))
        after = queue_rpcs(slurm.sdiag_rpcs_sync())
        assert 1 <= after - before <= 3
    finally:
        poller.close()


@pytest.mark.slurm
@pytest.mark.asyncio
async def test_controller_outage_is_unknown_not_gone(devcluster: DevCluster, slurm: TestSlurm) -> None:
    jid = slurm.submit_sync(sleep_script(600), ["-c", "1", "-p", "batch", "-t", "10"])
    short = SlurmClient(devcluster.slurm_conf, timeout=15)
    poller = QueuePoller(short, fast_interval=0.5, slow_interval=0.5)
    try:
        poller.watch(jid)  # stays watched across the outage
        st = await poller.wait_for(jid, lambda s: s.running, timeout=60)
        node = st.nodes
        devcluster.stop_daemon("slurmctld")
        try:
            snap = await poller.refresh()
            assert snap[jid].state == UNKNOWN and not snap[jid].ended
            assert snap[jid].nodes == node  # last facts kept
            assert poller.stats.failures >= 1
        finally:
            devcluster.start_daemon("slurmctld")
        st = await poller.wait_for(jid, lambda s: s.known, timeout=60)
        assert st.running and st.nodes == node
    finally:
        poller.close()


@pytest.mark.slurm
@pytest.mark.asyncio
async def test_a_job_that_ends_while_slurmdbd_is_down_reads_ended_with_its_state(
    devcluster: DevCluster, slurm: TestSlurm
) -> None:
    """Accounting down while a job ends: the controller still says how it ended, so the
    poller reports COMPLETED (never GONE, never stuck), and sacct has the record once
    slurmdbd is back."""
    jid = slurm.submit_sync(sleep_script(600), ["-c", "1", "-p", "batch", "-t", "10"])
    poller = QueuePoller(slurm, fast_interval=0.5, slow_interval=0.5)
    try:
        poller.watch(jid)
        await poller.wait_for(jid, lambda s: s.running, timeout=60)
        devcluster.stop_daemon("slurmdbd")
        try:
            await slurm.cancel([jid])
            st = await poller.wait_for(jid, lambda s: s.ended, timeout=60)
            assert st.state == "CANCELLED" and st.state != GONE
            assert poller.stats.failures == 0
        finally:
            devcluster.start_daemon("slurmdbd")

        def recorded_end() -> bool:
            try:
                final = slurm.sacct_final_sync([jid]).get(jid)
            except SlurmCommandError:  # slurmdbd still coming back
                return False
            return final is not None and final.state == "CANCELLED"

        wait_until("slurmdbd to record the job's end", recorded_end, timeout=120)
    finally:
        poller.close()


@pytest.mark.slurm
@pytest.mark.asyncio
async def test_cancelled_and_unknown_ids(devcluster: DevCluster, slurm: TestSlurm) -> None:
    jid = slurm.submit_sync(sleep_script(600), ["-c", "1", "-p", "batch", "-t", "10"])
    poller = QueuePoller(slurm, fast_interval=0.3, slow_interval=0.3)
    try:
        await poller.wait_for(jid, lambda s: s.running, timeout=60)
        await slurm.cancel([jid])
        st = await poller.wait_for(jid, lambda s: s.ended, timeout=60)
        assert st.state == "CANCELLED"
        # an id the controller does not know and accounting never saw: GONE, not UNKNOWN
        st = await poller.wait_for("987654", lambda s: s.state != "PENDING", timeout=30)
        assert st.state == GONE
    finally:
        poller.close()


class _FakeClient:
    """Pure-logic fake: returns scripted answers (or raises) in order."""

    def __init__(self, answers: list[dict[str, JobStatus] | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    def squeue_sync(self, ids: list[str]) -> dict[str, JobStatus]:
        a = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(a, Exception):
            raise a
        return {k: v for k, v in a.items() if k in ids}

    def sacct_final_sync(self, ids: list[str]) -> dict[str, JobStatus]:
        return {}


def test_interval_fast_while_pending_slow_when_steady() -> None:
    pend = {"1": JobStatus("1", "PENDING", reason="Priority")}
    run = {"1": JobStatus("1", "RUNNING", nodes="node1")}
    fake = _FakeClient([pend, run, run])
    p = QueuePoller(fake, fast_interval=1.0, slow_interval=10.0, jitter=0.1)  # type: ignore[arg-type]
    p._watched["1"] = 1
    p.poll_once(["1"])
    assert 0.9 <= p._next_interval() <= 1.1
    p.poll_once(["1"])  # changed → still fast this round
    assert p._next_interval() <= 1.1
    p.poll_once(["1"])  # steady
    intervals = {round(p._next_interval(), 3) for _ in range(20)}
    assert all(9.0 <= i <= 11.0 for i in intervals) and len(intervals) > 1  # jittered


def test_failure_keeps_facts_and_notifies() -> None:
    run = {"1": JobStatus("1", "RUNNING", nodes="node3")}
    fake = _FakeClient([run, SlurmCommandError(["squeue"], 1, "", "Unable to contact slurm controller")])
    p = QueuePoller(fake)  # type: ignore[arg-type]
    p._watched["1"] = 1
    seen: list[dict[str, JobStatus]] = []
    p.add_listener(seen.append)
    p.poll_once(["1"])
    p.poll_once(["1"])
    st = p.status("1")
    assert st is not None and st.state == UNKNOWN and st.nodes == "node3" and not st.ended
    assert [c["1"].state for c in seen] == ["RUNNING", UNKNOWN]
    assert "Unable to contact" in (p.stats.last_error or "")


def test_failed_rounds_back_off_with_jitter_up_to_a_cap_and_a_good_round_resets() -> None:
    down = SlurmCommandError(["squeue"], 1, "", "slurm_load_jobs error: Socket timed out on send/recv operation")
    run = {"1": JobStatus("1", "RUNNING", nodes="node1")}
    fake = _FakeClient([down] * 6 + [run, run])
    p = QueuePoller(fake, fast_interval=1.0, slow_interval=10.0, max_backoff=16.0)  # type: ignore[arg-type]
    p._watched["1"] = 1
    for failures, cap in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 16.0), (6, 16.0)]:
        p.poll_once(["1"])
        seen = {round(p._next_interval(), 6) for _ in range(50)}
        assert p.failed_rounds == failures and all(cap * 0.5 <= i <= cap for i in seen), (failures, seen)
        assert len(seen) > 1  # jittered: many pollers do not come back in step
    p.poll_once(["1"])  # the controller answers again: the normal intervals
    p.poll_once(["1"])
    assert p.failed_rounds == 0 and all(9.0 <= p._next_interval() <= 11.0 for _ in range(20))


# ---- hardening (#11): one user, or a hung controller, cannot stop the poller ----------------

# what squeue prints for each format field of three jobs; job 3's user renamed it (%j)
_ROWS = {
    "1": {"%i": "1", "%T": "RUNNING", "%r": "None", "%N": "node1", "%S": "2026-11-21T08:54:22",
          "%e": "2026-11-21T09:04:22", "%l": "10:00", "%P": "batch", "%q": "normal", "%u": "ada",
          "%V": "2026-11-21T08:54:22", "%B": "node1", "%j": "plain", "%k": "(null)"},
    "2": {"%i": "2", "%T": "PENDING", "%r": "Priority", "%N": "", "%S": "N/A", "%e": "N/A",
          "%l": "30:00", "%P": "batch", "%q": "normal", "%u": "bob", "%V": "2026-11-21T08:54:22",
          "%B": "n/a", "%j": "plain", "%k": "(null)"},
}

HOSTILE_NAMES = [
    "a\nb|c",  # a newline and the separator
    "x\n1|COMPLETED|None|node1|N/A|N/A|1:00|batch|normal|ada|N/A|node1|x",  # a forged row
    "a|b|c|d",
    "t\tab",
    "%j%%i%T",
    "x\ufffd\ufffdy",  # non-UTF-8 bytes, as the runner decodes them
    "n" * 100_000,
    "",
]


class _FakeSqueue(Runner):
    """squeue as Slurm runs it: prints each row in the format the argv asks for, with the
    job name (and comment) of job 3 chosen by its user; ``hang`` blocks the command."""

    def __init__(self, name: str = "plain") -> None:
        super().__init__("/nonexistent/slurm.conf")
        self.rows = {k: dict(v) for k, v in _ROWS.items()}
        self.rows["3"] = {**self.rows["1"], "%i": "3", "%N": "node2", "%B": "node2", "%j": name, "%k": name}
        self.hang = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def execute(self, argv: Sequence[str], input: str | None) -> Result:
        self.calls += 1
        if self.hang.is_set():
            self.release.wait(30)
        if argv[0] != "squeue":
            return Result(list(argv), 0, "", "")
        fields = argv[argv.index("-o") + 1].split("|")
        ids = argv[argv.index("-j") + 1].split(",")
        out = "".join("|".join(self.rows[j][f] for f in fields) + "\n" for j in ids if j in self.rows)
        return Result(list(argv), 0, out, "")


def _poller(runner: Runner, **kw: float) -> QueuePoller:
    client = SlurmClient("/nonexistent/slurm.conf")
    client.runner = runner
    return QueuePoller(client, fast_interval=0.05, slow_interval=0.05, use_sacct=False, **kw)


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_a_hostile_job_name_breaks_no_round(name: str) -> None:
    p = _poller(_FakeSqueue(name))
    p._watched.update({"1": 1, "2": 1, "3": 1})
    found = p.poll_once(["1", "2", "3"])
    assert {j: s.state for j, s in found.items()} == {"1": "RUNNING", "2": "PENDING", "3": "RUNNING"}
    assert found["3"].nodes == "node2" and p.stats.failures == 0


class _Flaky:
    """A client whose squeue fails in a scripted way, then answers."""

    def __init__(self) -> None:
        self.fail: BaseException | None = None
        self.state = "RUNNING"

    def squeue_sync(self, ids: list[str]) -> dict[str, JobStatus]:
        if self.fail is not None:
            raise self.fail
        return {j: JobStatus(j, self.state, nodes="node1") for j in ids}

    def sacct_final_sync(self, ids: list[str]) -> dict[str, JobStatus]:
        return {}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fault",
    [ValueError("unexpected squeue line"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
     KeyError("x"), RuntimeError("bug"), OSError(24, "Too many open files")],
    ids=lambda e: type(e).__name__,
)
async def test_a_round_failing_for_any_reason_is_unknown_and_the_thread_goes_on(fault: Exception) -> None:
    fake = _Flaky()
    p = QueuePoller(fake, fast_interval=0.05, slow_interval=0.05)  # type: ignore[arg-type]
    try:
        p.watch(["1", "2"])
        st = await p.wait_for("1", lambda s: s.running, timeout=5)
        fake.fail = fault
        st = await p.wait_for("1", lambda s: not s.known, timeout=5)
        assert st.state == UNKNOWN and st.nodes == "node1" and not st.ended  # not lost, not ended
        assert p.status("2") is not None and p.status("2").state == UNKNOWN  # type: ignore[union-attr]
        assert p.stats.failures >= 1 and p.stats.last_error
        fake.fail, fake.state = None, "COMPLETING"
        st = await p.wait_for("1", lambda s: s.known, timeout=5)  # the next good round restores it
        assert st.state == "COMPLETING"
        assert p._thread is not None and p._thread.is_alive()
    finally:
        p.close()


@pytest.mark.asyncio
async def test_awaits_return_within_the_timeout_while_the_controller_hangs() -> None:
    runner = _FakeSqueue()
    p = _poller(runner, wait_timeout=0.5)
    try:
        p.watch(["1", "2"])
        await asyncio.wait_for(p.refresh(), 5)
        assert p.status("1").state == "RUNNING"  # type: ignore[union-attr]
        runner.hang.set()  # slurmctld stops answering: squeue blocks
        rounds = runner.calls
        await asyncio.sleep(0)  # let the thread enter the hung command
        t0 = time.monotonic()
        # the ways the hub's spawner and the poller's own API await a round
        snap = await asyncio.wait_for(p.refresh(), 5)
        await asyncio.wait_for(asyncio.wrap_future(p.request_next_round()), 5)
        await asyncio.wait_for(asyncio.wrap_future(p.request_refresh()), 5)
        assert time.monotonic() - t0 < 3 * 0.5 + 1  # each within wait_timeout (and slack)
        assert snap["1"].state == UNKNOWN and snap["1"].nodes == "node1" and snap["2"].state == UNKNOWN
        assert "overdue" in (p.stats.last_error or "")
        runner.hang.clear()
        runner.release.set()  # the controller is back
        st = await p.wait_for("1", lambda s: s.known, timeout=5)
        assert st.running and runner.calls > rounds
    finally:
        runner.release.set()
        p.close()


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the point
async def test_awaits_return_when_the_poller_thread_is_gone() -> None:
    fake = _Flaky()
    fake.fail = SystemExit(1)  # not an Exception: kills the thread
    p = QueuePoller(fake, fast_interval=0.05, slow_interval=0.05, wait_timeout=0.3)  # type: ignore[arg-type]
    try:
        p.watch("1")
        snap = await asyncio.wait_for(p.refresh(), 5)
        assert snap["1"].state == UNKNOWN
        fake.fail = None
        st = await p.wait_for("1", lambda s: s.known, timeout=5)  # asking again restarts it
        assert st.running
    finally:
        p.close()


def test_an_idle_poller_resolves_waiters_without_marking_jobs() -> None:
    fake = _Flaky()
    p = QueuePoller(fake, fast_interval=3600, slow_interval=3600, wait_timeout=0.2)  # type: ignore[arg-type]
    try:
        p.watch("1")
        p.request_refresh().result(timeout=5)
        assert p.status("1").state == "RUNNING"  # type: ignore[union-attr]
        # no round comes for an hour: the await still ends, and the job is not made UNKNOWN
        assert p.request_next_round().result(timeout=5)["1"].state == "RUNNING"
    finally:
        p.close()


def test_the_shared_pollers_commands_are_bounded() -> None:
    from sandfill.slurm.poller import COMMAND_TIMEOUT, WAIT_TIMEOUT

    p = QueuePoller.shared("/nonexistent/h1-slurm.conf")
    try:
        assert p.client.runner.timeout == COMMAND_TIMEOUT and p.wait_timeout == WAIT_TIMEOUT
        assert COMMAND_TIMEOUT < WAIT_TIMEOUT
    finally:
        p.close()
    with pytest.raises(ValueError, match="wait_timeout.*0"):
        QueuePoller(_Flaky(), wait_timeout=0)  # type: ignore[arg-type]


@pytest.mark.slurm
@pytest.mark.asyncio
async def test_live_a_job_renamed_to_a_hostile_name_does_not_stop_the_poller(devcluster: DevCluster, slurm: TestSlurm) -> None:
    args = ["-c", "1", "-p", "batch", "-t", "10"]
    renamed, other = slurm.submit_sync(sleep_script(600), args), slurm.submit_sync(sleep_script(600), args)
    poller = QueuePoller(SlurmClient(devcluster.slurm_conf, timeout=15), fast_interval=0.3, slow_interval=0.3)
    try:
        poller.watch([renamed, other])
        for j in (renamed, other):
            await poller.wait_for(j, lambda s: s.running, timeout=60)
        # its user renames it: a newline and the separator, then bytes that are not UTF-8
        for name in ("a\nb|c", "x\udcff\udcfe|y\tz%j\n7|COMPLETED"):
            slurm.runner.check(scontrol.rename_job_argv(renamed, name))
            assert "\n" in slurm.runner.check(squeue.name_argv(renamed)).strip()  # the name is in
            before = poller.stats.polls
            await asyncio.wait_for(poller.refresh(), 30)
            assert poller.stats.polls > before and poller.stats.failures == 0
        await slurm.cancel([other])  # another job's state keeps updating
        st = await poller.wait_for(other, lambda s: s.ended, timeout=60)
        assert st.state == "CANCELLED"
        st = poller.status(renamed)
        assert st is not None and st.running and st.nodes
        assert poller._thread is not None and poller._thread.is_alive()
    finally:
        poller.close()


@pytest.mark.slurm
@pytest.mark.asyncio
async def test_live_a_hung_controller_reads_unknown_and_awaits_stay_bounded(devcluster: DevCluster, slurm: TestSlurm) -> None:
    jid = slurm.submit_sync(sleep_script(600), ["-c", "1", "-p", "batch", "-t", "10"])
    # the command timeout is shorter than the stop; the stop stays well below the cluster's
    # SlurmdTimeout (20 s), after which a resumed slurmctld would mark the nodes down
    poller = QueuePoller(SlurmClient(devcluster.slurm_conf, timeout=4), fast_interval=0.5, slow_interval=0.5, wait_timeout=6)
    ctld = next(d for d in devcluster.daemons() if d.name == "slurmctld")
    try:
        poller.watch(jid)
        node = (await poller.wait_for(jid, lambda s: s.running, timeout=60)).nodes
        os.kill(ctld.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            st = await poller.wait_for(jid, lambda s: not s.known, timeout=15)
            assert st.nodes == node and not st.ended  # last facts kept, never "ended"
            while time.monotonic() - t0 < 10:  # longer than the command timeout
                for fut in (poller.request_next_round(), poller.request_refresh()):
                    t = time.monotonic()
                    await asyncio.wait_for(asyncio.wrap_future(fut), poller.wait_timeout + 2)
                    assert time.monotonic() - t <= poller.wait_timeout + 2
                    st = poller.status(jid)
                    assert st is not None and st.state == UNKNOWN and st.nodes == node
        finally:
            os.kill(ctld.pid, signal.SIGCONT)
        assert poller.stats.failures >= 1
        st = await poller.wait_for(jid, lambda s: s.known, timeout=60)  # states recover
        assert st.running and st.nodes == node
    finally:
        poller.close()


@pytest.mark.asyncio
async def test_a_burst_of_new_watches_shares_one_round_and_a_refresh_still_gets_its_own() -> None:
    runner = _FakeSqueue()
    client = SlurmClient("/nonexistent/slurm.conf")
    client.runner = runner
    p = QueuePoller(client, fast_interval=0.5, slow_interval=0.5, use_sacct=False, jitter=0.0)
    try:
        p.watch("1")
        await asyncio.wait_for(p.refresh(), 5)
        before = runner.calls
        for _ in range(10):  # a cluster submitting worker jobs one after another
            p.watch(["1", "2"])
            time.sleep(0.01)  # the time between two submissions, not synchronisation
        assert runner.calls - before <= 1  # at most one round in that burst (not ten)
        calls = runner.calls
        await asyncio.wait_for(p.refresh(), 5)  # an explicit refresh still gets a round of its own
        assert runner.calls > calls and p.stats.last_error is None
    finally:
        p.close()
