"""The metrics of one process, read through the scrape endpoint of a real app (in process, its SQLite database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.config import load_settings

OCTETS = {"Content-Type": "application/octet-stream"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app = create_app(load_settings(overrides={"data_dir": str(tmp_path / "data")}))
    return TestClient(app, client=("127.0.0.1", 5000))


def test_requests_bytes_and_stores_are_counted(client: TestClient) -> None:
    image = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
    assert client.put(f"/v2/images/{image}/file", content=b"x" * 3000, headers=OCTETS).status_code == 204
    for _ in range(2):
        assert client.get(f"/v2/images/{image}/file").content == b"x" * 3000
    client.get("/v2/images/no-such-id/and/more")  # an invented path is not a new label
    text = client.get("/metrics").text
    assert value(text, "glimpse_image_upload_bytes_total", operation="upload") == 3000
    assert value(text, "glimpse_image_download_bytes_total") == 6000
    assert value(text, "glimpse_http_requests_total", method="GET", route="/v2/images/{image_id}/file",
                 status="200") == 2  # fmt: skip
    assert value(text, "glimpse_http_requests_total", method="POST", route="/v2/images", status="201") == 1
    assert value(text, "glimpse_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not [k for k in samples(text) if any(v.startswith("/v2/images/no-such") for _, v in k[1])]
    assert value(text, "glimpse_http_request_duration_seconds_count", method="PUT",
                 route="/v2/images/{image_id}/file") == 1  # fmt: skip
    assert value(text, "glimpse_store_operation_duration_seconds_count", store="file", operation="add") == 1
    assert value(text, "glimpse_store_operation_duration_seconds_count", store="file", operation="get") == 2
    assert value(text, "glimpse_uploads_in_progress", operation="upload") == 0
    assert value(text, "glimpse_tasks", status="pending") == 0 and value(text, "glimpse_database_up") == 1
    assert value(text, "glimpse_db_connections_open") >= 1
    assert value(text, "glimpse_db_pool_capacity") >= 1


def test_store_errors_are_counted_by_class(client: TestClient, tmp_path: Path) -> None:
    image = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
    client.put(f"/v2/images/{image}/file", content=b"data", headers=OCTETS)
    (tmp_path / "data" / "images" / image).unlink()  # the data is gone behind the service's back
    assert client.get(f"/v2/images/{image}/file").status_code >= 400
    text = client.get("/metrics").text
    assert value(text, "glimpse_store_operation_errors_total", store="file", operation="get", error="NotFound") == 1


def test_scrapes_only_from_allowed_networks(tmp_path: Path) -> None:
    app = create_app(load_settings(overrides={"data_dir": str(tmp_path / "data")}))
    outside = TestClient(app, client=("192.0.2.7", 5000))
    refused = outside.get("/metrics", headers={"Accept": "application/json"})
    assert refused.status_code == 403 and "allowed_source_ranges" in refused.json()["message"]
    assert TestClient(app, client=("::1", 5000)).get("/metrics").status_code == 200
    assert TestClient(app, client=("127.0.0.1", 5000)).post("/metrics").status_code == 405


def test_disabled_metrics_leave_no_endpoint(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[metrics]\nenabled = false\n")
    app = create_app(load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "data")}))
    assert TestClient(app).get("/metrics").status_code == 404


def test_cache_lookups_are_read_from_the_cache_at_each_scrape() -> None:
    from glimpse.metrics.instruments import CacheCollector, Metrics

    counts = {"hits": 2, "misses": 1}
    metrics = Metrics()
    metrics.extra.append(CacheCollector(lambda: counts))
    text = metrics.exposition().decode()
    assert value(text, "glimpse_image_cache_lookups_total", result="hit") == 2
    assert value(text, "glimpse_image_cache_lookups_total", result="miss") == 1
    counts["hits"] = 5
    assert value(metrics.exposition().decode(), "glimpse_image_cache_lookups_total", result="hit") == 5


def test_dashboard_pages_are_one_route(client: TestClient) -> None:
    client.post("/dashboard/images//edit")  # the dashboard's own router sets an unhashable endpoint
    client.get("/dashboard/no/such/page")
    text = client.get("/metrics").text
    routes = {dict(labels).get("route") for name, labels in samples(text) if name == "glimpse_http_requests_total"}
    assert "/dashboard" in routes and not [r for r in routes if r and r.startswith("/dashboard/")]
