"""docs/grafana-dashboard.json imports into Grafana and asks only for metrics Glimpse exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from glimpse.domain.entities import TaskQueue
from glimpse.metrics.instruments import CacheCollector, Metrics, TaskQueueCollector

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana-dashboard.json"


def test_every_metric_of_the_dashboard_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus" and dashboard["panels"]
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bglimpse_[a-z_]+", target["expr"])
    }
    metrics = Metrics()
    metrics.extra.append(TaskQueueCollector(lambda: TaskQueue(1, 0, 2.0)))
    metrics.extra.append(CacheCollector(lambda: {"hits": 1, "misses": 0}))
    metrics.store_errors.labels("file", "get", "NotFound").inc()
    metrics.uploaded.labels("upload").inc()
    metrics.notification_counter()("sent")
    metrics.uploads.labels("upload")  # the request middleware shows both operations from the start
    metrics.store_latency.labels("file", "get").observe(0.1)
    metrics.latency.labels("GET", "/v2/images").observe(0.1)
    metrics.requests.labels("GET", "/v2/images", "200").inc()
    exported = set(re.findall(r"^(glimpse_[a-z_]+)", metrics.exposition().decode(), re.M))
    assert asked <= exported, asked - exported
