"""Run policy variants through the simulator, in parallel on Dask.

:func:`run_variants` submits one task per variant to a Dask cluster: a
:class:`~distributed.LocalCluster` of worker *processes* by default (the simulator is pure
Python, so threads would share one core), or an existing scheduler given by its address --
a site points this at a ``BackfillSLURMCluster``'s scheduler, so the sweep itself runs as
backfill jobs; nothing here needs to know. The workload is scattered to every worker once.
Each task is keyed by the sweep's run id and the variant's name and submitted with
``retries``; a task whose worker dies is rescheduled by the scheduler, so every variant
gives exactly one row. A variant whose simulation still raises gives a row holding only its
``error``; the other variants go on. ``workers=0`` runs the variants one after another in this process
(the benchmark's baseline, and quick searches).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from sandfill.policies.document.model import Policy
from sandfill.policies.lab.spec import Variant
from sandfill.policies.sim.simulator import SimConfig
from sandfill.policies.sim.workload import Workload

CLASSES = ("all", "short", "long", "small", "large")
CONNECT_TIMEOUT = "10s"  # how long to try an existing scheduler's address
FIELDS = ("jobs", "mean_wait", "median_wait", "p95_wait", "max_wait", "mean_bsld", "starved")
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SimSettings:
    """What every variant of one sweep shares: the machine and how it is simulated
    (``sim``), and how its figures are summarized."""

    sim: SimConfig
    short_limit: int = 3600
    starve_after: int = 86400


def evaluate(policy: Policy, workload: Workload, load: float, settings: SimSettings) -> Row:
    """Simulate ``workload`` (scaled by ``load``) under ``policy``: the figures, flat
    (``short.p95_wait``, ``utilization``, ...), plus who computed them."""
    from sandfill.policies.sim.metrics import summarize
    from sandfill.policies.sim.simulator import simulate

    res = simulate(policy, workload.scaled(load), settings.sim)
    met = summarize(res, short_limit=settings.short_limit, starve_after=settings.starve_after)
    row: Row = {"utilization": met.utilization, "rejected": met.rejected}
    for c in met.classes:
        if c.name in CLASSES or c.name.startswith("tier:"):
            row.update({f"{c.name}.{f}": getattr(c, f) for f in FIELDS})
    row["sim_seconds"] = res.wall_seconds
    row["worker"] = _worker_name()
    return row


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid:{os.getpid()}"


class TextBar:
    """A plain text progress bar on a stream (stderr): ``[####----] 12/100 variants``."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        filled = self.width * self.done // max(1, self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        end = "\n" if self.done >= self.total else ""
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} variants "
                          f"{time.monotonic() - self.t0:.0f}s{end}")
        self.stream.flush()


def run_variants(
    variants: Sequence[Variant],
    workload: Workload,
    settings: SimSettings,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    retries: int = 2,
    progress: Callable[[int], None] | None = None,
    client: Any = None,
    on_row: Callable[[str, Row], None] | None = None,
) -> dict[str, Row]:
    """One row per variant name, each computed once (see the module docstring); on
    ``client`` when given (a :class:`distributed.Client` kept across several calls).
    ``on_row(name, row)`` hears of each row as it is done (a sweep's journal keeps it)."""
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError("variant names must be unique")
    bar, heard = progress or (lambda n: None), on_row or (lambda name, row: None)

    def tick(name: str, row: Row) -> None:
        heard(name, row)
        bar(1)

    if client is not None:
        return _on_dask(client, variants, workload, settings, retries, tick)
    if workers == 0 and scheduler is None:
        rows = {}
        for v in variants:
            try:
                rows[v.name] = evaluate(v.policy, workload, v.load, settings)
            except Exception as exc:  # one variant's failure is its row, not the sweep's end
                rows[v.name] = failed(exc)
            tick(v.name, rows[v.name])
        return rows
    with dask_client(scheduler, workers) as own:
        return _on_dask(own, variants, workload, settings, retries, tick)


def _on_dask(client: Any, variants: Sequence[Variant], workload: Workload, settings: SimSettings,
             retries: int, tick: Callable[[str, Row], None]) -> dict[str, Row]:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    [wl] = client.scatter([workload], broadcast=True, hash=False)
    futures = {
        client.submit(evaluate, v.policy, wl, v.load, settings, key=f"sweep-{run}-{v.name}",
                      retries=retries, pure=False): v.name
        for v in variants
    }
    rows: dict[str, Row] = {}
    for fut in as_completed(futures):
        name = futures[fut]
        if name in rows:  # as_completed yields each future once; a guard all the same
            raise RuntimeError(f"variant {name} reported twice")
        exc = fut.exception() if fut.status == "error" else None  # after its retries
        rows[name] = failed(exc) if exc is not None else fut.result()
        tick(name, rows[name])
    return rows


def failed(exc: BaseException) -> Row:
    """The row of a variant whose simulation raised: only the error."""
    return {"error": f"{type(exc).__name__}: {exc}"}


class SchedulerUnreachable(RuntimeError):
    """The scheduler address given does not answer (nothing ran)."""


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A client of ``scheduler`` (an address), or of a new LocalCluster of ``workers``
    single-threaded worker processes that is closed afterwards; None when ``workers`` is 0
    and no scheduler is given (run in this process)."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is None and workers == 0:
        yield None
        return
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client
