"""Placement that knows each worker's time left.

A task may declare how long it needs, with a Dask annotation::

    with dask.annotate(duration="10m"):
        future = client.submit(simulate, params)   # or any collection computed inside

It is then never started on a worker whose remaining life -- its job's real end, less
``retire-margin``, less now -- is shorter: it waits (Dask's ``no-worker`` state) for a worker
that has the time, or moves to one. Tasks without the annotation are placed as Dask always
places them. A duration is read by :func:`dask.utils.parse_timedelta` (``"10m"``, ``"1h"``,
``90`` = 90 seconds); anything else fails the whole submission at once, naming the value.

The mechanism is a :class:`~distributed.Scheduler` subclass, :class:`PlacementScheduler`:

* :meth:`~PlacementScheduler.valid_workers` is the one place Dask asks "who may run this
  task": for a fresh task (``decide_worker_non_rootish``), for a ``no-worker`` task when a
  worker joins (``bulk_schedule_unrunnable_after_adding_worker``) and for work stealing
  (``WorkStealing._get_thief``). Answered at decision time, with the clock at that moment;
* :meth:`~PlacementScheduler.is_rootish` is False for an annotated task, as Dask already has
  it for a task with restrictions, so scheduler-side queuing and root-task co-assignment
  (which never ask ``valid_workers``) do not take it;
* :meth:`~PlacementScheduler.set_worker_ends` takes the cluster keeper's word (worker name →
  when it stops taking work) and sends waiting tasks to a worker that now has the time.

The cluster side, :class:`TimeLeftFeed`, feeds the keeper's job ends in each round and says
how long a new worker job must live for the longest declared duration still waiting.
"""

from __future__ import annotations

import functools
import math
import operator
import time
from collections.abc import Hashable, Mapping
from datetime import timedelta
from typing import Any

from distributed import Scheduler
from distributed.scheduler import TaskState, WorkerState

from dask.utils import parse_timedelta

#: the annotation a task declares its duration with
DURATION = "duration"


def parse_duration_annotation(value: Any, key: Hashable = None) -> float:
    """``value`` (a ``duration`` annotation) in seconds: a string Dask reads as a time
    (``"10m"``, ``"90s"``, ``"1h"``), a number of seconds or a ``timedelta``; zero or more, and
    finite. Raises ValueError naming the value (and the task's key, when given)."""
    where = f" of task {key!r}" if key is not None else ""
    seconds: float | None = None
    if isinstance(value, timedelta | str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            seconds = _parse(value)
        except (ValueError, KeyError, TypeError):
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"the {DURATION!r} annotation{where} is {value!r}, which is not a duration: give the "
            "time the task needs as Dask reads it, e.g. dask.annotate(duration=\"10m\") "
            "(\"90s\", \"2h\", or a number of seconds)"
        )
    return seconds


@functools.lru_cache(maxsize=1024)
def _parse(value: Any) -> float | None:
    return parse_timedelta(value)


def _check_graph(annotations_by_type: Mapping[str, Mapping[Hashable, Any]], global_annotations: Mapping[str, Any] | None, keys: Any) -> None:
    """Raise ValueError for the first ``duration`` annotation in a submitted graph that is
    not a duration (a callable global annotation is asked for each of ``keys``)."""
    for key, value in (annotations_by_type.get(DURATION) or {}).items():
        parse_duration_annotation(value, key)
    value = (global_annotations or {}).get(DURATION)
    if value is None:
        return
    if callable(value):
        for key in keys:
            got = value(key)
            if got is not None:
                parse_duration_annotation(got, key)
    else:
        parse_duration_annotation(value)


class PlacementScheduler(Scheduler):
    """A Dask scheduler that starts a task annotated with ``duration`` only on a worker that
    lives at least that long (see the module's doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: worker name → when it stops taking work (epoch seconds: its job's end less the
        #: retire margin), from the cluster's keeper; a worker not named here has no known time
        self.worker_ends: dict[str, float] = {}
        super().__init__(*args, **kwargs)

    # ---- what a task needs and a worker has ---------------------------------------------------
    @staticmethod
    def needs(ts: TaskState) -> float | None:
        """The seconds ``ts`` declared it needs, or None (no ``duration`` annotation)."""
        value = (ts.annotations or {}).get(DURATION)
        return None if value is None else parse_duration_annotation(value, ts.key)

    def time_left(self, ws: WorkerState, now: float | None = None) -> float:
        """Seconds until worker ``ws`` stops taking work; 0 when the keeper has not said."""
        end = self.worker_ends.get(str(ws.name))
        return 0.0 if end is None else end - (time.time() if now is None else now)

    def has_time(self, ws: WorkerState, need: float) -> bool:
        return self.time_left(ws) >= need

    # ---- Dask's placement hooks --------------------------------------------------------------
    def valid_workers(self, ts: TaskState) -> set[WorkerState] | None:
        valid = super().valid_workers(ts)
        need = self.needs(ts)
        if need is None:
            return valid
        pool = valid if valid is not None else self.running
        ok = {ws for ws in pool if self.has_time(ws, need)}
        if not ok and valid is not None and ts.loose_restrictions:  # allow_other_workers=True
            ok = {ws for ws in self.running if self.has_time(ws, need)}
        return ok

    def is_rootish(self, ts: TaskState) -> bool:
        return self.needs(ts) is None and super().is_rootish(ts)

    def decide_worker_non_rootish(self, ts: TaskState) -> WorkerState | None:
        # with loose restrictions (allow_other_workers=True) and no valid worker at all,
        # decide_worker falls back to every worker; the declared duration still holds then
        ws = super().decide_worker_non_rootish(ts)
        need = self.needs(ts)
        if ws is not None and need is not None and not self.has_time(ws, need):
            return None
        return ws

    def _create_taskstate_from_graph(self, **kwargs: Any) -> dict[str, float]:
        # before any task state exists: a bad duration fails the whole submission, and
        # update_graph reports the ValueError to the client as each key's exception
        _check_graph(kwargs["annotations_by_type"], kwargs["global_annotations"], kwargs["dsk"])
        return super()._create_taskstate_from_graph(**kwargs)

    # ---- the keeper's side ---------------------------------------------------------------------
    def set_worker_ends(self, ends: Mapping[str, float]) -> None:
        """Take the keeper's worker ends; when they changed, send every waiting annotated
        task that a worker now has the time for to that worker."""
        ends = dict(ends)
        if ends == self.worker_ends:
            return
        self.worker_ends = ends
        runnable = [ts for ts in self.unrunnable if self.needs(ts) is not None and self.valid_workers(ts)]
        if runnable:
            runnable.sort(key=operator.attrgetter("priority"), reverse=True)  # processed LIFO
            self.transitions({ts.key: "processing" for ts in runnable}, f"sandfill-worker-ends-{time.time()}")

    def longest_waiting(self) -> float:
        """The longest duration declared by a task waiting for a worker (0 if none)."""
        return max((need for ts in self.unrunnable if (need := self.needs(ts)) is not None), default=0.0)


class TimeLeftFeed:
    """The cluster's link to its :class:`PlacementScheduler`: worker ends in, and the walltime
    a new worker job needs for the tasks that wait."""

    def __init__(self, scheduler: PlacementScheduler, *, retire_margin: float, slack: float) -> None:
        self.scheduler = scheduler
        self.retire_margin = retire_margin
        self.slack = slack

    def feed(self, ends: Mapping[str, float]) -> None:
        self.scheduler.set_worker_ends(ends)

    def walltime_needed(self) -> float:
        """Seconds a new worker job must ask for, so that its workers live as long as the
        longest declared duration waiting: that, plus ``retire-margin`` and ``slack`` (the
        workers' start-up), in whole minutes; 0 when nothing waits."""
        need = self.scheduler.longest_waiting()
        if need <= 0:
            return 0.0
        return math.ceil((need + self.retire_margin + self.slack) / 60) * 60.0

    def sized(self, shape: dict[str, Any]) -> dict[str, Any]:
        """The planner's job ``shape`` with its walltime at least :meth:`walltime_needed`
        (the gap planner still caps it at the partition's MaxTime)."""
        need = self.walltime_needed()
        if need <= shape["min_walltime"]:
            return shape
        return {**shape, "min_walltime": need, "max_walltime": max(shape["max_walltime"], need)}
