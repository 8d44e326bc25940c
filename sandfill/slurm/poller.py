"""ONE batched queue poller per process (per Slurm cluster).

Every part of sandfill that wants to know a job's state asks this poller, which keeps a
cache and runs a single ``squeue -j <all watched ids>`` per round. It polls fast while
something is pending, changing or unknown and slowly when everything is steady, with
jitter so that many processes do not poll in step. A failed query marks every watched job
UNKNOWN (keeping the last facts) — never "gone"; a job the controller answered about and no
longer lists is looked up once in accounting (``sacct``) for its final state.

The poller runs in its own daemon thread, so callers on any event loop (the hub's, a
Dask cluster's, a Jupyter server's) share it; async callers await ``refresh()`` or
``wait_for()``.

One user must not be able to stop it, nor a hung controller make its callers hang:

- a round that fails for any reason (a Slurm error, output it cannot read, a bug) marks
  its jobs UNKNOWN and the thread goes on; the next good round restores their states;
- every future it hands out (``request_refresh``, ``request_next_round``, and so what
  ``refresh()`` awaits) is resolved within ``wait_timeout`` seconds, by a watchdog thread
  if the round does not come. When a round has been running that long (a hung controller),
  or the poller thread is gone, the watchdog marks the watched jobs UNKNOWN first;
- the shared poller's own commands time out after :data:`COMMAND_TIMEOUT` seconds.

A controller that is slow or down is not hammered: after failed rounds the next timed
round waits ``fast_interval * 2**failures`` (with jitter, at most :attr:`max_backoff`
seconds, 30 by default: a recovered controller is seen within that), so many pollers spread
out and let it recover; the first good round returns to the normal intervals. A caller's
``refresh()`` still starts a round at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sandfill.slurm.client import SlurmClient
from sandfill.slurm.states import GONE, UNKNOWN, JobStatus, check_job_id

log = logging.getLogger("sandfill.slurm.poller")

#: seconds the shared poller's squeue (and sacct) may take before it is killed (the round
#: then fails: its jobs are UNKNOWN)
COMMAND_TIMEOUT = 15.0
#: seconds within which every future the poller hands out is resolved, round or not
WAIT_TIMEOUT = 20.0

Listener = Callable[[dict[str, JobStatus]], None]


@dataclass
class PollerStats:
    polls: int = 0  # squeue calls made
    failures: int = 0  # squeue calls that failed (jobs reported UNKNOWN)
    sacct_calls: int = 0
    last_error: str | None = None
    last_poll: float | None = None


class QueuePoller:
    _shared: dict[str | None, QueuePoller] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        client: SlurmClient | None = None,
        *,
        fast_interval: float = 1.0,
        slow_interval: float = 10.0,
        jitter: float = 0.1,
        use_sacct: bool = True,
        wait_timeout: float = WAIT_TIMEOUT,
        max_backoff: float = 30.0,
    ) -> None:
        if not wait_timeout > 0:
            raise ValueError(f"wait_timeout must be a positive number of seconds, not {wait_timeout!r}")
        self.client = client or SlurmClient(timeout=COMMAND_TIMEOUT)
        self.wait_timeout = wait_timeout
        self.fast_interval = fast_interval
        self.slow_interval = slow_interval
        self.jitter = jitter
        self.use_sacct = use_sacct
        self.max_backoff = max_backoff
        self.failed_rounds = 0  # failed rounds in a row (the backoff's exponent)
        self.stats = PollerStats()
        self._watched: dict[str, int] = {}  # job id → number of watchers
        self._status: dict[str, JobStatus] = {}
        self._listeners: list[Listener] = []
        self._waiters: list[concurrent.futures.Future[dict[str, JobStatus]]] = []
        # every unresolved future handed out → when (monotonic); the watchdog resolves it
        # after wait_timeout
        self._pending: dict[concurrent.futures.Future[dict[str, JobStatus]], float] = {}
        self._lock = threading.Lock()
        self._pending_added = threading.Condition(self._lock)
        self._wake = threading.Event()  # a reason for a round: a new watch, a refresh, close
        self._asked = threading.Event()  # a refresh (or close): the round starts at once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._round_started: float | None = None  # monotonic, while a round runs
        self._changed_recently = False

    # ---- the one per process ------------------------------------------------------------
    @classmethod
    def shared(cls, slurm_conf: str | os.PathLike[str] | None = None, **kwargs: float) -> QueuePoller:
        """The poller of this process for ``slurm_conf`` (None: ``$SLURM_CONF``), its commands
        bounded by :data:`COMMAND_TIMEOUT`; ``kwargs`` (the constructor's) only count when it
        is created."""
        key = str(slurm_conf) if slurm_conf else os.environ.get("SLURM_CONF")
        with cls._shared_lock:
            p = cls._shared.get(key)
            if p is None:
                p = cls(SlurmClient(key, timeout=COMMAND_TIMEOUT), **kwargs)  # type: ignore[arg-type]
                cls._shared[key] = p
            return p

    # ---- watching -------------------------------------------------------------------------
    def watch(self, job_ids: str | Iterable[str]) -> None:
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        with self._lock:
            for j in ids:
                j = check_job_id(j)
                self._watched[j] = self._watched.get(j, 0) + 1
        self._ensure_thread()
        self._wake.set()

    def unwatch(self, job_ids: str | Iterable[str]) -> None:
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        with self._lock:
            for j in ids:
                n = self._watched.get(j, 0) - 1
                if n <= 0:
                    self._watched.pop(j, None)
                    self._status.pop(j, None)
                else:
                    self._watched[j] = n

    @property
    def watched(self) -> list[str]:
        with self._lock:
            return list(self._watched)

    def status(self, job_id: str) -> JobStatus | None:
        """The cached status (no query). None until the first poll that included the job."""
        with self._lock:
            return self._status.get(job_id)

    def snapshot(self) -> dict[str, JobStatus]:
        with self._lock:
            return dict(self._status)

    def add_listener(self, fn: Listener) -> None:
        """``fn(changed)`` is called from the poller thread after each round with the
        statuses that changed. Use ``loop.call_soon_threadsafe`` to hop to a loop."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    # ---- asking for fresh data ------------------------------------------------------------
    def request_refresh(self) -> concurrent.futures.Future[dict[str, JobStatus]]:
        """A future resolved by the next round that starts after this call. Concurrent
        requests share one round (one squeue). Resolved within :attr:`wait_timeout` seconds
        whatever happens (see the module's notes)."""
        fut = self._new_waiter()
        self._asked.set()
        self._wake.set()
        return fut

    async def refresh(self) -> dict[str, JobStatus]:
        """The snapshot after the next round (bounded by :attr:`wait_timeout`)."""
        return await asyncio.wrap_future(self.request_refresh())

    async def wait_for(
        self, job_id: str, predicate: Callable[[JobStatus], bool], timeout: float
    ) -> JobStatus:
        """Wait (without extra queries) until the job's cached status satisfies ``predicate``."""
        self.watch(job_id)
        try:
            # not commands.wait_until: that one blocks a thread; this awaits poller rounds
            deadline = time.monotonic() + timeout
            while True:
                st = self.status(job_id)
                if st is not None and predicate(st):
                    return st
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {job_id}: condition not met within {timeout:.0f} s (last: {st})")
                fut = self.request_next_round()
                try:
                    await asyncio.wait_for(asyncio.wrap_future(fut), left)
                except TimeoutError:
                    pass
        finally:
            self.unwatch(job_id)

    def request_next_round(self) -> concurrent.futures.Future[dict[str, JobStatus]]:
        """A future resolved after the next round, without hurrying it; resolved within
        :attr:`wait_timeout` seconds whatever happens."""
        return self._new_waiter()

    def _new_waiter(self) -> concurrent.futures.Future[dict[str, JobStatus]]:
        fut: concurrent.futures.Future[dict[str, JobStatus]] = concurrent.futures.Future()
        with self._lock:
            self._waiters.append(fut)
            self._pending[fut] = time.monotonic()
            self._pending_added.notify()
        self._ensure_thread()
        return fut

    def close(self) -> None:
        self._stop.set()
        self._asked.set()
        self._wake.set()
        with self._lock:
            self._pending_added.notify()
        for t in (self._thread, self._watchdog):
            if t is not None:
                t.join(timeout=10)
        with self._lock:
            left = list(self._pending)
        self._settle(left)  # nobody waits on a closed poller
        with QueuePoller._shared_lock:
            for k, v in list(QueuePoller._shared.items()):
                if v is self:
                    del QueuePoller._shared[k]

    # ---- the loop -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="sandfill-queue-poller", daemon=True)
                self._thread.start()
            if self._watchdog is None or not self._watchdog.is_alive():
                self._watchdog = threading.Thread(target=self._watch_waiters, name="sandfill-queue-watchdog", daemon=True)
                self._watchdog.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # a wake from now on asks for the round after this one
            self._asked.clear()
            with self._lock:
                waiters, self._waiters = self._waiters, []
                active = [j for j in self._watched if not (self._status.get(j) and self._status[j].ended)]
            try:
                if active:
                    self.poll_once(active)
            except Exception:  # poll_once handles its failures; this is a last line
                log.exception("queue poller round failed")
            except BaseException:  # the thread ends: its waiters go to the watchdog
                with self._lock:
                    self._waiters[:0] = waiters
                raise
            self._settle(waiters)
            ended, gap = time.monotonic(), self._next_interval()
            self._wake.wait(gap)
            if not self._asked.is_set():  # new watches alone (a cluster submitting twelve worker
                # jobs): at most one round per fast interval, so a burst of them shares one
                self._asked.wait(max(0.0, ended + min(self.fast_interval, gap) - time.monotonic()))

    def _settle(self, futures: Iterable[concurrent.futures.Future[dict[str, JobStatus]]]) -> None:
        """Resolve ``futures`` with the current snapshot (those not resolved yet)."""
        snap = self.snapshot()
        with self._lock:
            for fut in futures:
                self._pending.pop(fut, None)
        for fut in futures:
            try:
                fut.set_result(snap)
            except concurrent.futures.InvalidStateError:
                pass  # resolved by the other thread, or cancelled by its caller

    def _watch_waiters(self) -> None:
        """The watchdog: resolve every future at most ``wait_timeout`` after it was handed
        out; first mark the jobs UNKNOWN when no round can answer (one has run that long,
        or the poller thread is gone)."""
        while not self._stop.is_set():
            with self._pending_added:
                now = time.monotonic()
                due = [f for f, t in self._pending.items() if now - t >= self.wait_timeout]
                if not due:
                    first = min(self._pending.values(), default=None)
                    wait = None if first is None else first + self.wait_timeout - now
                    self._pending_added.wait(wait)
                    continue
                changed = self._mark_overdue(now)
                listeners = list(self._listeners)
            self._notify(changed, listeners)
            self._settle(due)

    def _mark_overdue(self, now: float) -> dict[str, JobStatus]:
        """Under the lock: the watched jobs that have not ended, as UNKNOWN, when the round
        in progress has run ``wait_timeout`` seconds or the poller thread is gone."""
        stuck = self._round_started is not None and now - self._round_started >= self.wait_timeout
        dead = self._thread is None or not self._thread.is_alive()
        if not (stuck or dead):
            return {}
        self.stats.last_error = "the queue poller's round is overdue" if stuck else "the queue poller stopped"
        changed: dict[str, JobStatus] = {}
        for j in self._watched:
            old = self._status.get(j)
            if old is not None and (old.ended or not old.known):
                continue
            changed[j] = self._status[j] = old.as_unknown() if old is not None else JobStatus(j, UNKNOWN)
        if changed:
            log.warning("%s: %d job(s) reported unknown", self.stats.last_error, len(changed))
        return changed

    def _next_interval(self) -> float:
        if self.failed_rounds:  # back off, with jitter: no herd of pollers on a recovering controller
            return min(self.max_backoff, self.fast_interval * 2**self.failed_rounds) * random.uniform(0.5, 1.0)
        with self._lock:
            sts = [self._status.get(j) for j in self._watched]
        busy = self._changed_recently or any(
            s is None or s.pending or not s.known or s.state == "COMPLETING" for s in sts if s is None or not s.ended
        )
        base = self.fast_interval if busy else self.slow_interval
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    def poll_once(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """One round: one squeue for ``job_ids`` (and one sacct for vanished ones). A round
        that fails for any reason reports its jobs UNKNOWN (last facts kept)."""
        self.stats.polls += 1
        self.stats.last_poll = time.time()
        with self._lock:
            self._round_started = time.monotonic()
        try:
            found = self.client.squeue_sync(job_ids)
            unreadable = getattr(found, "unreadable", ())
            missing = [j for j in job_ids if j not in found]
            if missing and not unreadable:
                found.update(self._final_states(missing))
            elif missing:  # a line squeue printed and nobody could read may be theirs
                found.update(self._unknown(missing))
        except Exception as exc:  # any failure: unknown, never gone
            return self._failed(job_ids, exc)
        finally:
            with self._lock:
                self._round_started = None
        self.stats.last_error = None
        self.failed_rounds = 0
        self._publish(found)
        return found

    def _failed(self, job_ids: list[str], exc: Exception) -> dict[str, JobStatus]:
        self.stats.failures += 1
        self.failed_rounds += 1
        self.stats.last_error = str(exc) or type(exc).__name__
        log.warning("queue query failed, jobs reported unknown: %r", exc)
        new = self._unknown(job_ids)
        self._publish(new)
        return new

    def _unknown(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """``job_ids`` (the watched ones) as UNKNOWN, with their last facts."""
        with self._lock:
            return {
                j: (self._status[j].as_unknown() if j in self._status else JobStatus(j, UNKNOWN))
                for j in job_ids
                if j in self._watched
            }

    def _final_states(self, job_ids: list[str]) -> dict[str, JobStatus]:
        final: dict[str, JobStatus] = {}
        if self.use_sacct:
            self.stats.sacct_calls += 1
            try:
                final = self.client.sacct_final_sync(job_ids)
            except Exception as exc:  # accounting is a hint here
                log.info("sacct lookup failed for %s: %s", job_ids, exc)
        now = time.time()
        for j in job_ids:
            st = final.get(j)
            if st is None or not st.ended:
                # the controller answered without the job and accounting has no final
                # record: it is gone (no reason known)
                final[j] = JobStatus(j, GONE, observed=now)
        return final

    def _publish(self, new: dict[str, JobStatus]) -> None:
        changed: dict[str, JobStatus] = {}
        with self._lock:
            for j, st in new.items():
                if j not in self._watched:
                    continue
                old = self._status.get(j)
                if old is None or _facts(old) != _facts(st):
                    changed[j] = st
                self._status[j] = st
            listeners = list(self._listeners)
        self._changed_recently = bool(changed)
        self._notify(changed, listeners)

    @staticmethod
    def _notify(changed: dict[str, JobStatus], listeners: list[Listener]) -> None:
        if not changed:
            return
        for fn in listeners:
            try:
                fn(changed)
            except Exception:  # a listener's bug must not stop the poller
                log.exception("queue poller listener failed")


def _facts(st: JobStatus) -> tuple[object, ...]:
    return (st.state, st.reason, st.nodes, st.start_time, st.end_time, st.time_limit)
