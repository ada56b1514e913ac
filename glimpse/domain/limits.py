"""The operator's limits the image use cases apply (image_size_cap, quotas on properties and tags, page sizes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    image_size_cap: int
    image_property_quota: int
    image_tag_quota: int
    limit_param_default: int
    api_limit_max: int
    hashing_algorithm: str
    heartbeat_every: float = 10.0  # seconds between an upload's signs of life
    image_location_quota: int = 10
    image_property_value_max_length: int = 65535
    deduplicate: bool = True  # deduplicate_image_data: identical data stored once per store
