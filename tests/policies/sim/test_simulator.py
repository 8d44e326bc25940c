"""Hand-written scenarios: expected start times are written in each YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandfill.dev.invariants import check_schedule
from sandfill.policies.document.load import policy_from_mapping
from sandfill.policies.sim.simulator import SimConfig, simulate
from sandfill.policies.sim.workload import Job, Workload

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))
CASES = [
    pytest.param(path, i, id=f"{path.stem}-{i}-{run['backfill']}-{run.get('bf_timing', 'grid')}")
    for path in SCENARIOS
    for i, run in enumerate(yaml.safe_load(path.read_text())["runs"])
]


def _run(path: Path, i: int):
    spec = yaml.safe_load(path.read_text())
    run = spec["runs"][i]
    policy = policy_from_mapping(run.get("policy", spec["policy"]))
    jobs = tuple(
        Job(
            id=j["id"],
            submit=j["submit"],
            run_time=j["run"],
            cpus=j["cpus"],
            user=j.get("user", "u"),
            time_limit=j.get("limit"),
            time_min=j.get("time_min"),
            partition=j.get("partition"),
        )
        for j in spec["jobs"]
    )
    cfg = SimConfig(
        nodes=spec["cluster"]["nodes"],
        cpus_per_node=spec["cluster"]["cpus_per_node"],
        backfill=run["backfill"],
        use_trace_partitions=spec.get("use_trace_partitions", False),
        accounting=run.get("accounting", True),
        record_reservations=True,
        bf_timing=run.get("bf_timing", "grid"),
        bf_last=run.get("bf_last"),
    )
    return run, simulate(policy, Workload(jobs), cfg)


@pytest.mark.parametrize(("path", "i"), CASES)
def test_scenario(path: Path, i: int) -> None:
    run, res = _run(path, i)
    ids = [j.id for j in res.workload.jobs]
    assert {j.id: s for j, s in zip(res.workload.jobs, res.start, strict=True)} == run["starts"]
    assert check_schedule(res) == []
    for jid, end in run.get("ends", {}).items():
        assert res.end[ids.index(jid)] == end, f"end of job {jid}"
    for jid, tier in run.get("tiers", {}).items():
        assert res.tier_names[res.job_tier[ids.index(jid)]] == tier
    for jid, reason in run.get("held", {}).items():
        assert res.held.get(ids.index(jid)) == reason
    if "held" in run:
        assert len(res.held) == len(run["held"])
    for jid, n in run.get("preempted", {}).items():
        assert res.preemptions[ids.index(jid)] == n
    if "passes" in run:  # when the backfill passes ran
        assert [r.time for r in res.backfill_log] == run["passes"]
    for jid, t in run.get("last_starts", {}).items():
        assert max(s.start for s in res.segments if s.job == ids.index(jid)) == t


def test_scenarios_distinguish_algorithms() -> None:
    """Each algorithm's expectations differ, so a missing feature would fail a scenario."""
    spec = yaml.safe_load((Path(__file__).parent / "scenarios" / "backfill.yaml").read_text())
    starts = [tuple(sorted(r["starts"].items())) for r in spec["runs"]]
    assert len(set(starts)) == len(starts) == 3


def test_invariant_checker_catches_overcommit() -> None:
    _run_, res = _run(Path(__file__).parent / "scenarios" / "backfill.yaml", 2)
    from sandfill.policies.sim.simulator import Segment

    res.segments.append(Segment(0, 0, 50, 4, "completed", "main"))
    assert any("over-commit" in v for v in check_schedule(res))


def test_invariant_checker_catches_start_before_submit() -> None:
    _run_, res = _run(Path(__file__).parent / "scenarios" / "backfill.yaml", 2)
    from sandfill.policies.sim.simulator import Segment

    res.segments.append(Segment(4, 0, 0, 0, "completed", "main"))
    assert any("before its submit" in v for v in check_schedule(res))


def test_invariant_checker_catches_broken_reservation() -> None:
    _run_, res = _run(Path(__file__).parent / "scenarios" / "backfill.yaml", 2)
    from sandfill.policies.sim.simulator import BackfillRecord

    rec = next(r for r in res.backfill_log if r.reservations)
    r0 = rec.reservations[0]
    intruder = (99, rec.time, r0.end, res.capacity)  # a job started across the reservation
    res.backfill_log.append(BackfillRecord(rec.time, rec.reservations, rec.running + (intruder,)))
    assert any("overrun" in v for v in check_schedule(res))


def _counting_fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the backfill passes' start searches (Availability.earliest_fit calls)."""
    from sandfill.policies.sim.availability import Availability

    calls = [0]
    real = Availability.earliest_fit

    def counted(self, units: int, duration: int, latest_start: int,
                not_before: int | None = None) -> int | None:
        calls[0] += 1
        return real(self, units, duration, latest_start, not_before)

    monkeypatch.setattr(Availability, "earliest_fit", counted)
    return calls


def _fifo(window: str = "1-00:00:00") -> dict:
    return {"tiers": {"batch": {"max_walltime": "1-00:00:00"}}, "roles": {"default": "batch"},
            "priority": {"type": "basic"}, "scheduler": {"backfill": {"window": window}}}


def test_saturated_pass_stops_when_nothing_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 whole-machine jobs and a half-machine 2000-second one queue behind a half-machine
    job running until 1000: only the last one fits the units free now, until the first
    reservation (at 1000) takes them. A backfill pass then stops planning (it used to plan
    all 201 jobs each pass), and the schedule is unchanged."""
    calls = _counting_fits(monkeypatch)
    jobs = ([Job(0, 0, 1000, 2, "u", 1000)]
            + [Job(k, 1, 100, 4, "u", 100) for k in range(1, 201)]
            + [Job(201, 2, 2000, 2, "u", 2000)])
    res = simulate(policy_from_mapping(_fifo()), Workload(tuple(jobs)),
                   SimConfig(nodes=4, cpus_per_node=1, alloc="cpu"))
    assert res.start == [0] + [1000 + 100 * (k - 1) for k in range(1, 201)] + [21000]
    assert res.passes > 100
    assert calls[0] <= 10, calls  # the first pass alone used to plan 200


def test_pass_skips_shapes_that_found_no_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """100 five-node jobs find no start within a 10-minute bf_window: after the first one's
    search the others, no narrower and no shorter, are not searched again in that pass; the
    one-node job behind them still backfills at the first pass."""
    calls = _counting_fits(monkeypatch)
    jobs = ([Job(0, 0, 3600, 4, "u", 3600)]
            + [Job(k, 1, 100, 5, "u", 100 + k) for k in range(1, 101)]
            + [Job(101, 2, 100, 1, "u", 100)])
    res = simulate(policy_from_mapping(_fifo("10:00")), Workload(tuple(jobs)),
                   SimConfig(nodes=5, cpus_per_node=1, alloc="cpu"))
    assert res.start[101] == 30
    assert res.start[1] == 3600
    assert calls[0] < 10  # the first pass alone used to search 100 times


def test_no_fit_staircase() -> None:
    from sandfill.policies.sim.backfill import _NoFit

    nf = _NoFit()
    nf.add(4, 600)
    assert nf.covers(4, 600) and nf.covers(8, 900)
    assert not nf.covers(3, 900) and not nf.covers(8, 300)
    nf.add(2, 900)
    nf.add(8, 60)
    assert nf.covers(2, 900) and nf.covers(8, 60) and nf.covers(5, 600)
    assert not nf.covers(5, 300)
    nf.add(1, 60)  # covers every other shape: the staircase keeps only it
    assert (nf.units, nf.plans) == ([1], [60])


def test_queue_head_merges_as_sorting_would() -> None:
    """The window's merge of live keys (shifted by age_rate * now) and capped keys, run by
    run with bisect, gives the order sorting both heads gives (ties on priority broken by
    the rest of the key), for every head length."""
    import random

    from sandfill.policies.sim.simulator import _merge_head

    def by_sorting(pending: list, capped: list, m: int, shift: float) -> list[int]:
        keys = [(k[0], k[1] - shift, k[2], k[3]) for k in pending[:m]] + capped[:m]
        return [k[3] for k in sorted(keys)[:m]]

    rng = random.Random(16)
    for _ in range(3000):
        n_live, n_capped = rng.randint(0, 25), rng.randint(0, 25)
        ids = rng.sample(range(1000), n_live + n_capped)
        shift = rng.choice([0.0, 0.5, 3.7, 120.0])
        top = rng.choice([0, -1])  # one PriorityTier (bisect on priority alone), or two
        pending = sorted((rng.randint(top, 0), rng.randint(0, 12) * 0.5, rng.randint(0, 3), j)
                         for j in ids[:n_live])
        capped = sorted((rng.randint(top, 0), rng.randint(0, 12) * 0.5 - shift,
                         rng.randint(0, 3), j) for j in ids[n_live:])
        m = rng.randint(1, 60)
        assert _merge_head(pending, capped, m, shift) == by_sorting(pending, capped, m, shift)


def _memo_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandfill.policies.sim.backfill as bf

    monkeypatch.setattr(bf, "_memo_ok", lambda sim: False)


def _stack(arrivals: int, max_job_test: int = 40) -> tuple[list[Job], dict]:
    """A 3-node job runs to 3600 on 4 nodes; 38 three-node jobs queue behind it (each
    reserved after the one before), then a four-node one, then a long one-node job that fits
    now until that reservation blocks it: every pass plans those 40. ``arrivals``
    low-priority four-node jobs arrive a minute apart, behind them (outside the window with
    bf_max_job_test 40)."""
    jobs = ([Job(0, 0, 3600, 3, "u", 3600)]
            + [Job(k, 0, 600, 3, "u", 600) for k in range(1, 39)]
            + [Job(39, 0, 600, 4, "u", 600), Job(40, 0, 86400, 1, "u", 86400)]
            + [Job(40 + k, 60 * k, 600, 4, "u", 600) for k in range(1, arrivals + 1)])
    policy = {**_fifo(), "scheduler": {"backfill": {"window": "1-00:00:00",
                                                    "max_job_test": max_job_test}}}
    return jobs, policy


def test_pass_reuses_an_unchanged_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrivals outside the window change neither the running set nor the window, so the
    passes they trigger before 3600 decide what the first one decided (nothing): they are
    not planned again (49 passes used to search 39 starts each), and the schedule is the same
    as with every pass planned."""
    jobs, policy = _stack(50)
    cfg = SimConfig(nodes=4, cpus_per_node=1, alloc="cpu")
    calls = _counting_fits(monkeypatch)
    res = simulate(policy_from_mapping(policy), Workload(tuple(jobs)), cfg)
    reused = calls[0]
    _memo_off(monkeypatch)
    calls[0] = 0
    full = simulate(policy_from_mapping(policy), Workload(tuple(jobs)), cfg)
    assert res.start == full.start and res.segments == full.segments
    assert res.passes == full.passes > 50
    assert full.start[40] == -1 or full.start[40] >= 3600  # it never backfilled early
    assert calls[0] - reused >= 49 * 39, (reused, calls[0])  # the 49 reused passes' searches


def test_pass_memo_ends_when_a_start_enters_bf_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """On 6 nodes, A (3 nodes) runs to 3600, E (2) to 3900, B (1) to 2700; queued, in order:
    R (6 nodes, 600 s), X (4 nodes, 600 s), Y (1 node, 1020 s), then 40 six-node jobs; with
    bf_window 18 min. At 2700 (B ended) R's start (3900) is past the horizon (3780), X is
    reserved at 3600 and blocks Y. A six-node arrival at 2800 sits outside the window
    (bf_max_job_test 40), but by the pass at 2820 R's start is inside the horizon: R's
    reservation pushes X out and Y backfills at 2820. A pass that reused 2700's decision
    (nothing) would miss it."""
    jobs = ([Job(0, 0, 3600, 3, "u", 3600), Job(1, 0, 3900, 2, "u", 3900),
             Job(2, 0, 2700, 1, "u", 2700), Job(3, 0, 600, 6, "u", 600),
             Job(4, 0, 600, 4, "u", 600), Job(5, 0, 1020, 1, "u", 1020)]
            + [Job(k, 0, 36000, 6, "u", 36000) for k in range(6, 46)]
            + [Job(46, 2800, 600, 6, "u", 600)])
    policy = {**_fifo(), "scheduler": {"backfill": {"window": "18:00", "max_job_test": 40}}}
    cfg = SimConfig(nodes=6, cpus_per_node=1, alloc="cpu")
    res = simulate(policy_from_mapping(policy), Workload(tuple(jobs)), cfg)
    assert res.start[5] == 2820
    _memo_off(monkeypatch)
    assert simulate(policy_from_mapping(policy), Workload(tuple(jobs)), cfg).start == res.start


def test_pass_resumes_where_the_window_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With bf_max_job_test 60 each arrival joins the window behind the 40 planned jobs: a
    pass replays the last pass's 40 positions (same running set, same jobs) and plans on
    from the first new one, instead of searching 39 starts again; same schedule."""
    jobs, policy = _stack(50, max_job_test=60)
    cfg = SimConfig(nodes=4, cpus_per_node=1, alloc="cpu")
    calls = _counting_fits(monkeypatch)
    res = simulate(policy_from_mapping(policy), Workload(tuple(jobs)), cfg)
    resumed = calls[0]
    _memo_off(monkeypatch)
    calls[0] = 0
    full = simulate(policy_from_mapping(policy), Workload(tuple(jobs)), cfg)
    assert res.start == full.start and res.segments == full.segments
    assert res.passes == full.passes > 50
    assert calls[0] - resumed >= 49 * 39, (resumed, calls[0])


def test_common_prefix() -> None:
    from sandfill.policies.sim.backfill import _common_prefix

    for n in range(12):
        a = list(range(n))
        assert _common_prefix(a, a) == n and _common_prefix(a, a + [7]) == n
        for k in range(n):
            assert _common_prefix(a, a[:k] + [-1] + a[k + 1:]) == k


def test_watch_alive_matches_testing_every_job() -> None:
    """The watch's answer (a few candidates one by one, then the rest in numpy) is the one a
    test of every remaining window job against the profile, as reservations fill it, gives."""
    import random
    from types import SimpleNamespace

    import numpy as np

    from sandfill.policies.sim.availability import Availability
    from sandfill.policies.sim.backfill import _Watch

    rng = random.Random(7)
    for _ in range(300):
        cap = 16
        ends = [(rng.randint(1, 50) * 60, rng.randint(1, 3)) for _ in range(rng.randint(0, 5))]
        prof = Availability(0, cap, cap - sum(u for _, u in ends), ends)
        n = rng.randint(1, 40)
        units = [rng.randint(1, cap) for _ in range(n)]
        plans = [rng.randint(1, 60) * 60 for _ in range(n)]
        sim = SimpleNamespace(units_arr=np.array(units), plan_arr=np.array(plans))
        watch = _Watch(sim, prof, list(range(n)))
        for pos in range(0, n, 3):
            want = any(units[j] <= prof.free[0] and prof.fits_now(units[j], plans[j])
                       for j in range(pos, n))
            assert watch.alive(pos, prof) == want
            t = rng.randint(0, 40) * 60
            prof.reserve(t, t + rng.randint(1, 20) * 60, rng.randint(0, 2))


def test_full_machine_pass_builds_no_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a 4-node job fills the machine until 1000, one-node arrivals every 10 s bring
    main and backfill passes that cannot start anything: no backfill pass builds a profile
    and no main pass walks the queue; the jobs still start at 1000 as before."""
    from sandfill.policies.sim.availability import Availability

    built: list[int] = []
    real = Availability.__init__

    def counted(self, now: int, capacity: int, free_now: int, ends: list) -> None:
        built.append(now)
        real(self, now, capacity, free_now, ends)

    monkeypatch.setattr(Availability, "__init__", counted)
    from sandfill.policies.sim.simulator import Simulator

    walked: list[int] = []  # main passes that walked the queue (its first job cannot start)
    real_order = Simulator.ordered_queue

    def ordered(self: Simulator):
        walked.append(self.now)
        return real_order(self)

    monkeypatch.setattr(Simulator, "ordered_queue", ordered)
    jobs = [Job(0, 0, 1000, 4, "u", 1000)] + [Job(k, 10 * k, 300, 1, "u", 300)
                                              for k in range(1, 61)]
    res = simulate(policy_from_mapping(_fifo()), Workload(tuple(jobs)),
                   SimConfig(nodes=4, cpus_per_node=1, alloc="cpu"))
    assert res.passes > 30
    assert not [t for t in built if t < 1000], built
    assert not [t for t in walked if 0 < t < 1000], walked
    assert res.start[1:5] == [1000] * 4 and min(res.start[5:]) >= 1000


def test_queue_ids_follow_their_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job lists kept beside the sorted queue keys (live and past PriorityMaxAge) stay
    in step through arrivals, starts and promotions, and the window is the queue's head."""
    from itertools import islice

    from sandfill.policies.sim.simulator import Simulator

    seen = [0]
    real = Simulator.queue_head

    def checked(self: Simulator, m: int) -> list[int]:
        head = real(self, m)
        assert self.pending_ids == [k[3] for k in self.pending]
        assert self.capped_ids == [k[3] for k in self.capped]
        assert head == list(islice(self.ordered_queue(), m))
        seen[0] += bool(self.capped)
        return head

    monkeypatch.setattr(Simulator, "queue_head", checked)
    policy = {"tiers": {"batch": {"max_walltime": "1-00:00:00"}}, "roles": {"default": "batch"},
              "priority": {"type": "multifactor", "max_age": "10:00",
                           "weights": {"age": 1000, "job_size": 1000}},
              "scheduler": {"backfill": {"window": "1-00:00:00"}}}
    jobs = [Job(k, 20 * k, 300 + 37 * (k % 7), 1 + k % 4, "u", 600) for k in range(120)]
    simulate(policy_from_mapping(policy), Workload(tuple(jobs)),
             SimConfig(nodes=4, cpus_per_node=1, alloc="cpu"))
    assert seen[0] > 10  # windows with jobs past PriorityMaxAge were checked


def test_queue_head_cut_is_reused_only_while_it_holds() -> None:
    """Random arrivals, starts and time steps over a queue whose jobs pass PriorityMaxAge:
    after each, the window (reused from the last cut when it still holds) is the head of
    the queue in order, for a window that fills and one that does not."""
    import random
    from itertools import islice

    from sandfill.policies.sim.simulator import Simulator

    policy = policy_from_mapping({
        "tiers": {"batch": {"max_walltime": "1-00:00:00"}}, "roles": {"default": "batch"},
        "priority": {"type": "multifactor", "max_age": "10:00",
                     "weights": {"age": 1000, "job_size": 1000}}})
    rng = random.Random(5)
    jobs = tuple(Job(k, 0, 60, rng.randint(1, 8), "u", 60) for k in range(400))
    for m in (12, 1000):
        sim = Simulator(policy, Workload(jobs), SimConfig(nodes=8, cpus_per_node=1,
                                                          alloc="cpu"))
        waiting, reused = list(range(len(jobs))), 0
        for _ in range(1500):
            op = rng.random()
            if op < 0.3 and waiting:
                sim.enqueue(waiting.pop(rng.randrange(len(waiting))))
            elif op < 0.4 and sim.pending_key:
                sim.dequeue(rng.choice(list(sim.pending_key)))
            else:
                sim.now += rng.choice([1, 7, 30, 120])
            before = sim.head_cache
            head = sim.queue_head(m)
            reused += before is not None and sim.head_cache is before
            assert head == list(islice(sim.ordered_queue(), m))
            assert sim.queue_first() == next(iter(sim.ordered_queue()), None)
        assert reused > 100, reused


def test_a_timed_out_job_that_keeps_its_units_while_completing_is_not_overcommitted() -> None:
    """release_delay: a job killed at its limit holds its CPUs 120 s more. A job that arrives
    in those 120 s used to be started on them ("scheduler over-committed")."""
    jobs = (Job(0, 0, 900, 2, "u", 600), Job(1, 10, 600, 2, "u", 600), Job(2, 640, 60, 1, "u", 60))
    res = simulate(policy_from_mapping(_fifo()), Workload(jobs),
                   SimConfig(nodes=2, cpus_per_node=1, alloc="cpu", release_delay=120))
    assert res.start == [0, 720, 1440] and res.end == [600, 1320, 1500]
    assert check_schedule(res) == []
