"""Image documents written by orjson: the same bytes as Starlette's JSONResponse for what an image holds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.responses import JSONResponse

from glimpse.api.documents import DocumentResponse

IMAGE: dict[str, Any] = {
    "id": "6b7c5e8a-1d3f-4c2b-9a8e-0f1e2d3c4b5a",
    "name": 'Ubuntu 24.04 «noble» 日本語 \u2028 </script> "quoted" back\\slash \x01',
    "protected": False,
    "checksum": None,
    "size": 2**40,
    "min_ram": 0,
    "tags": ["ünïcode", "emoji 🚀"],
    "locations": [{"url": "file:///x", "metadata": {"store": "a", "nested": {"list": [1, True, None]}}}],
}


@pytest.mark.parametrize(
    "content",
    [IMAGE, {"images": [IMAGE] * 20, "first": "/v2/images?limit=20", "schema": "/v2/schemas/images"}, [], {}],
)
def test_image_documents_are_byte_identical_to_starlettes(content: Any) -> None:
    assert DocumentResponse(content).body == JSONResponse(content).body


def test_a_float_keeps_its_value() -> None:
    content = {"metadata": {"small": 1e-05, "big": 1e16, "plain": 0.1}}
    assert json.loads(DocumentResponse(content).body) == content


@pytest.mark.parametrize("content", [{"size": 2**70}, {"metadata": {1: "not a string key"}}])
def test_what_orjson_refuses_is_written_as_before(content: Any) -> None:
    assert DocumentResponse(content).body == JSONResponse(content).body
