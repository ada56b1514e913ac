"""What the node tells about itself: Prometheus metrics, the health check's deep view, `glimpse status`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial

from sqlalchemy import Engine
from starlette.middleware import Middleware
from starlette.routing import Route

from glimpse.api.healthcheck import DeepChecks, Health
from glimpse.api.metrics import MetricsMiddleware
from glimpse.assembly.stores import node_name
from glimpse.assembly.web import dashboard_path
from glimpse.config import Settings
from glimpse.dashboard.web import BASE as DASHBOARD_BASE
from glimpse.db.health import ping, task_queue
from glimpse.domain.image_cache import CacheService
from glimpse.metrics.instruments import CacheCollector, Metrics, TaskQueueCollector, version


def measuring(
    settings: Settings, metrics: Metrics | None, routes: list[Route], engine: Engine | None, cache: CacheService
) -> list[Middleware]:
    """The metrics middleware (none when metrics are off), with the task queue's and the cache's collectors."""
    if metrics is None:
        return []
    if engine is not None:
        metrics.extra.append(TaskQueueCollector(partial(task_queue, engine)))
    if settings.image_cache is not None:
        metrics.extra.append(CacheCollector(cache.counters))
    templates: dict[object, str] = {route.endpoint: route.path for route in routes}
    fixed = partial(_fixed_route, settings.metrics.path)
    return [Middleware(MetricsMiddleware, metrics=metrics, config=settings.metrics, templates=templates, fixed=fixed)]


def _fixed_route(metrics_path: str, path: str) -> str | None:
    """The label of requests answered before routing: the dashboard's and the scrapes'."""
    if dashboard_path(path):
        return DASHBOARD_BASE
    return metrics_path if path == metrics_path else None


def health(
    settings: Settings, engine: Engine | None, store_checks: Mapping[str, Callable[[], str]], metrics: Metrics | None
) -> Health:
    """/healthcheck: the simple view's backends, and the detailed view's database, stores and node status."""
    deep = DeepChecks(
        database=partial(ping, engine) if engine is not None else None,
        stores=store_checks,
        status=node_status(settings, engine, list(store_checks), metrics),
    )
    return Health(settings.healthcheck, deep)


def node_status(
    settings: Settings, engine: Engine | None, stores: list[str], metrics: Metrics | None
) -> Callable[[], dict[str, object]]:
    """What `glimpse status` shows beside the checks (the detailed health check's "glimpse" part, in JSON)."""

    def status() -> dict[str, object]:
        figures: dict[str, object] = {
            "version": version(),
            "node": node_name(settings),
            "workers": settings.workers,
            "pid": os.getpid(),
            "uploads_in_progress": metrics.gauge_total("glimpse_uploads_in_progress") if metrics else None,
            "imports_in_progress": metrics.gauge_total("glimpse_imports_in_progress") if metrics else None,
            "stores": stores,
        }
        figures["tasks"] = None
        if engine is not None:
            try:
                queue = task_queue(engine)
            except Exception:  # the database check of the same answer says why
                return figures
            figures["tasks"] = {
                "pending": queue.pending,
                "processing": queue.processing,
                "oldest_pending_age": round(queue.oldest_pending_age, 3),
            }
        return figures

    return status
