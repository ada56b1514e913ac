"""The versions document lists what Glance 33 lists for the same configuration, with and without an image cache."""

from __future__ import annotations

from glimpse.api.versions import versions_document

BASE = ["v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"]


def _ids(document: dict[str, list[dict[str, object]]]) -> list[tuple[object, object]]:
    return [(v["id"], v["status"]) for v in document["versions"]]


def test_single_store_lists_2_9_but_not_the_multi_store_versions() -> None:
    listed = _ids(versions_document("http://images.example.com:9292"))
    assert listed == [
        ("v2.15", "SUPPORTED"),
        ("v2.9", "SUPPORTED"),
        ("v2.17", "CURRENT"),
        *((v, "SUPPORTED") for v in BASE),
    ]


def test_multi_store_lists_2_8_to_2_13() -> None:
    listed = _ids(versions_document("http://images.example.com:9292", multi_store=True))
    multi = ["v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8"]
    assert listed == [("v2.15", "SUPPORTED"), *((v, "SUPPORTED") for v in multi), ("v2.17", "CURRENT")] + [
        (v, "SUPPORTED") for v in BASE
    ]


def test_without_a_cache_no_cache_versions_are_offered() -> None:
    for multi_store in (False, True):
        ids = {v for v, _ in _ids(versions_document("http://h", multi_store))}
        assert not ids & {"v2.14", "v2.16", "v2.18"}


def test_with_a_cache_2_18_is_current_and_2_14_to_2_17_come_first() -> None:
    cache = [("v2.18", "CURRENT"), *((v, "SUPPORTED") for v in ("v2.17", "v2.16", "v2.15", "v2.14"))]
    single = _ids(versions_document("http://h", cache=True))
    assert single == [*cache, ("v2.9", "SUPPORTED"), *((v, "SUPPORTED") for v in BASE)]
    multi = _ids(versions_document("http://h", multi_store=True, cache=True))
    stores = ["v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8"]
    assert multi == [*cache, *((v, "SUPPORTED") for v in stores), *((v, "SUPPORTED") for v in BASE)]


def test_every_link_is_the_v2_root_of_the_endpoint() -> None:
    document = versions_document("https://images.example.com/image/")
    assert {v["links"][0]["href"] for v in document["versions"]} == {"https://images.example.com/image/v2/"}
