"""Every metric Glimpse exports, and their exposition (one process, or all of a run's workers).

Labels are bounded: a route is its template (/v2/images/{image_id}), never a raw path; a store is a configured
store id; an error is an error class name. Gauges of things in progress are "livesum" (the sum over the live
workers); the build information is "max".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib import metadata
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from glimpse.domain.entities import TaskQueue
from glimpse.metrics.multiprocess import current, reap_dead_workers

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Metadata requests take milliseconds; data transfers and imports minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def version() -> str:
    try:
        return metadata.version("glimpse")
    except metadata.PackageNotFoundError:
        return "unknown"


class TaskQueueCollector(Collector):
    """Reads the task queue from the database at each scrape: it is the whole service's, not a worker's."""

    def __init__(self, read: Callable[[], TaskQueue]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("glimpse_database_up", "1 when the database answered the scrape's query.")
        try:
            queue = self.read()
        except Exception:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        tasks = GaugeMetricFamily("glimpse_tasks", "Import tasks of the service by status.", labels=["status"])
        tasks.add_metric(["pending"], queue.pending)
        tasks.add_metric(["processing"], queue.processing)
        age = GaugeMetricFamily(
            "glimpse_task_queue_oldest_age_seconds", "Age of the oldest pending task (0 when none waits)."
        )
        age.add_metric([], queue.oldest_pending_age)
        return [up, tasks, age]


class CacheCollector(Collector):
    """The node's image cache hits and misses, read from the cache's own records at each scrape: every process of
    the node counts there, so a scrape answered by any worker gives the node's figures."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        try:
            counts = self.read()
        except Exception:  # a cache that cannot be read is bypassed by downloads; the scrape goes on without it
            return []
        lookups = CounterMetricFamily(
            "glimpse_image_cache_lookups", "Image cache lookups by result.", labels=["result"]
        )
        lookups.add_metric(["hit"], counts.get("hits", 0))
        lookups.add_metric(["miss"], counts.get("misses", 0))
        return [lookups]


class Metrics:
    """The instruments of one process. With a multiprocess folder their values live in its files."""

    def __init__(self, task_queue: Callable[[], TaskQueue] | None = None) -> None:
        self.folder: Path | None = current()
        self.registry = CollectorRegistry()
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        r = self.registry
        self.requests = Counter(
            "glimpse_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "glimpse_http_request_duration_seconds",
            "Time to answer an HTTP request, body included.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.uploaded = Counter(
            "glimpse_image_upload_bytes",
            "Image data bytes received: uploaded (upload, stage, dashboard) or fetched by the node (web-download, "
            "glance-download, copy-image).",
            ["operation"],
            registry=r,
        )
        self.downloaded = Counter("glimpse_image_download_bytes", "Image data bytes sent.", registry=r)
        self.uploads = Gauge(
            "glimpse_uploads_in_progress",
            "Uploads and stagings being received.",
            ["operation"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.imports = Gauge(
            "glimpse_imports_in_progress", "Import tasks running.", multiprocess_mode="livesum", registry=r
        )
        self.store_latency = Histogram(
            "glimpse_store_operation_duration_seconds",
            "Time of a store operation (get: until the data starts to flow).",
            ["store", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "glimpse_store_operation_errors", "Store operations that failed.", ["store", "operation", "error"],
            registry=r,
        )  # fmt: skip
        self.db_in_use = Gauge(
            "glimpse_db_connections_in_use", "Database connections checked out.", multiprocess_mode="livesum",
            registry=r,
        )  # fmt: skip
        self.db_open = Gauge(
            "glimpse_db_connections_open", "Database connections open.", multiprocess_mode="livesum", registry=r
        )
        self.db_capacity = Gauge(
            "glimpse_db_pool_capacity",
            "Connections the pools may open (pool size + overflow).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.notifications = Counter(
            "glimpse_notifications", "Notifications sent to the message bus, or dropped (queue full, bus refused).",
            ["result"], registry=r,
        )  # fmt: skip
        self.build = Gauge("glimpse_build_info", "Glimpse's version.", ["version"], multiprocess_mode="max", registry=r)
        self.build.labels(version()).set(1)
        self.extra: list[Collector] = [TaskQueueCollector(task_queue)] if task_queue else []
        self._lock = threading.Lock()

    def exposition(self) -> bytes:
        """The text a scrape gets: every worker's values in multiprocess mode, this process's otherwise."""
        registry = CollectorRegistry(auto_describe=False)
        if self.folder is not None:
            with self._lock:
                reap_dead_workers(self.folder)
            MultiProcessCollector(registry, str(self.folder))  # type: ignore[no-untyped-call]  # unannotated upstream
        else:
            registry.register(_Forward(self.registry))
        for collector in self.extra:
            registry.register(collector)
        return generate_latest(registry)

    def gauge_total(self, name: str) -> float:
        """The value of a gauge summed over its labels and the workers (for `glimpse status`)."""
        registry = CollectorRegistry(auto_describe=False)
        if self.folder is not None:
            MultiProcessCollector(registry, str(self.folder))  # type: ignore[no-untyped-call]  # unannotated upstream
        else:
            registry.register(_Forward(self.registry))
        total = 0.0
        for family in registry.collect():
            total += sum(s.value for s in family.samples if s.name == name)
        return total

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered: the request counter and the latency histogram. Their series are looked up
        once per labels: labels() checks and locks on every call. As many keys as the metrics have series (routes
        are templates)."""
        key = (method, route, status)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        found[0].inc()
        found[1].observe(seconds)

    def received(self, operation: str, size: int) -> None:
        """domain/ports.py:DataMeter: image data that came in by another way than the API's PUTs."""
        self.uploaded.labels(operation).inc(size)

    def notification_counter(self) -> Callable[[str], None]:
        """What the notifier tells of each event ("sent" or "dropped"); both show as 0 from the start."""
        for result in ("sent", "dropped"):
            self.notifications.labels(result)
        return lambda result: self.notifications.labels(result).inc()

    def tracking_imports(self) -> AbstractContextManager[object]:
        return self.imports.track_inprogress()

    @contextmanager
    def store_operation(self, store: str, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.store_errors.labels(store, operation, type(exc).__name__).inc()
            raise
        finally:
            self.store_latency.labels(store, operation).observe(time.perf_counter() - started)


class _Forward(Collector):
    """This process's own registry inside a scrape's registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()
