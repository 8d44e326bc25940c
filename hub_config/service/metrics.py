"""The service's Prometheus metrics (``/services/sandfill/metrics``), in a registry of its own.

- ``sandfill_slurm_rpcs_total{command}``: every Slurm command the service ran (each is at
  least one RPC to slurmctld; ``sdiag`` has the controller's own count);
- ``sandfill_slurm_poll_seconds``: how long one poller round (one ``squeue``) took;
- ``sandfill_slurm_cache_age_seconds``: how old the poller's last good answer is;
- ``sandfill_slurm_pending_jobs{tier}``: watched jobs pending, by partition (tier);
- ``sandfill_slurm_queue_wait_seconds{tier}``: submit → start of watched jobs, by tier, with
  buckets up to 24 h (JupyterHub's spawn histogram stops at 600 s).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sandfill.slurm.states import JobStatus

#: seconds: 1 s … 24 h
QUEUE_WAIT_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400)
POLL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)
_SEEN_MAX = 100_000  # job ids whose queue wait was observed (oldest forgotten first)


class _Snapshot(Collector):
    """Gauges computed at scrape time from the poller's cache."""

    def __init__(self, snapshot: Callable[[], dict[str, JobStatus]], last_good: Callable[[], float | None]) -> None:
        self.snapshot = snapshot
        self.last_good = last_good

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily("sandfill_slurm_pending_jobs", "Watched jobs pending, by tier (partition)", labels=["tier"])
        counts: dict[str, int] = {}
        for st in self.snapshot().values():
            if st.pending:
                tier = st.partition or "unknown"
                counts[tier] = counts.get(tier, 0) + 1
        for tier, n in sorted(counts.items()):
            pending.add_metric([tier], n)
        yield pending
        age = GaugeMetricFamily("sandfill_slurm_cache_age_seconds", "Seconds since the poller's last good answer from Slurm")
        last = self.last_good()
        age.add_metric([], float("nan") if last is None else max(0.0, time.time() - last))
        yield age


class Metrics:
    """The service's metrics; :meth:`observe_changes` is a poller listener."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rpcs = Counter("sandfill_slurm_rpcs", "Slurm commands the sandfill service ran", ["command"], registry=self.registry)
        self.poll_seconds = Histogram(
            "sandfill_slurm_poll_seconds", "Duration of one queue poller round", buckets=POLL_BUCKETS, registry=self.registry
        )
        self.queue_wait = Histogram(
            "sandfill_slurm_queue_wait_seconds",
            "Submit to start of watched jobs, by tier (partition)",
            ["tier"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=self.registry,
        )
        self._seen: OrderedDict[str, None] = OrderedDict()

    def watch_cache(self, snapshot: Callable[[], dict[str, JobStatus]], last_good: Callable[[], float | None]) -> None:
        self.registry.register(_Snapshot(snapshot, last_good))

    def count_command(self, command: str) -> None:
        self.rpcs.labels(command=command).inc()

    def observe_changes(self, changed: dict[str, JobStatus]) -> None:
        """The queue wait of each job the first time it is seen running."""
        for j, st in changed.items():
            if j in self._seen or st.pending or st.start_time is None or st.submit_time is None:
                continue
            if not st.running or st.start_time < st.submit_time:  # a job cancelled pending never waited
                continue
            self._seen[j] = None
            if len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
            self.queue_wait.labels(tier=st.partition or "unknown").observe(st.start_time - st.submit_time)
