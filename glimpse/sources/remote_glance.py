"""Another Glance or Glimpse as an import source (glance-download): its image's metadata and data.

The remote endpoint comes from the caller's Keystone catalog (the image service in the named region
and interface) or, without Keystone, from the operator's [glance_download_opts] region_endpoints.
Calls carry the caller's own token, so they see exactly what the caller may see there. That endpoint
is trusted (it may be internal, on any port), but the connection is still pinned, its redirects are
judged by the whole egress policy, and the transfer is bounded like any other fetch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from glimpse.errors import BadRequest, NotFound
from glimpse.sources import fetch
from glimpse.sources.egress import EgressPolicy

MAX_RECORD = 1024 * 1024  # an image record is JSON of a few KiB; more is not an image record
IMAGE_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")
INHERITED = ("disk_format", "container_format", "min_ram", "min_disk")


def find_endpoint(
    catalog: Sequence[Mapping[str, Any]], configured: Mapping[str, str], region: str, interface: str
) -> str:
    for service in catalog:
        if service.get("type") != "image":
            continue
        for endpoint in service.get("endpoints", []):
            if endpoint.get("interface") == interface and region in (endpoint.get("region_id"), endpoint.get("region")):
                return str(endpoint["url"]).rstrip("/")
    if region in configured:
        return configured[region].rstrip("/")
    raise BadRequest(f"No image service endpoint is known for region {region} ({interface}).")


def _headers(token: str | None) -> dict[str, str]:
    return {"X-Auth-Token": token, "Accept": "application/json"} if token else {"Accept": "application/json"}


def _image_url(endpoint: str, image_id: str) -> str:
    if not isinstance(image_id, str) or not IMAGE_ID.match(image_id):
        raise BadRequest("glance_image_id must be an image id (letters, digits and dashes).")
    return f"{endpoint}/v2/images/{image_id}"


def remote_image(endpoint: str, image_id: str, token: str | None, policy: EgressPolicy) -> dict[str, Any]:
    """The remote image's record; the endpoint (operator's or Keystone's) is trusted, its redirects are not."""
    url = _image_url(endpoint, image_id)
    with fetch.open_url(policy.trusting(endpoint), url, headers=_headers(token)) as transfer:
        if transfer.status_code == 404:
            raise NotFound(f"Image {image_id} was not found at {endpoint}.")
        if transfer.status_code != 200:
            raise BadRequest(f"The image service at {endpoint} answered {transfer.status_code} for image {image_id}.")
        body = transfer.read(MAX_RECORD)
    try:
        image = json.loads(body)
    except ValueError:
        raise BadRequest(f"The image service at {endpoint} sent no JSON for image {image_id}.") from None
    if not isinstance(image, dict):
        raise BadRequest(f"The image service at {endpoint} sent no image record for {image_id}.")
    if image.get("status") != "active":
        raise BadRequest(f"The remote image {image_id} is {image.get('status')}, not active.")
    return image


def inherited_metadata(remote: Mapping[str, Any], property_prefixes: Sequence[str]) -> dict[str, Any]:
    """What the local image takes over: formats, minimums and the extra properties the operator lists."""
    taken = {k: remote[k] for k in INHERITED if remote.get(k) is not None}
    for key, value in remote.items():
        if isinstance(value, str) and any(key.startswith(prefix) for prefix in property_prefixes):
            taken[key] = value
    return taken


def download(
    endpoint: str, image_id: str, token: str | None, policy: EgressPolicy, max_bytes: int | None = None
) -> Iterator[bytes]:
    """The remote image's data, under the same bounds as any fetch (deadline, rate, max_bytes)."""
    url = f"{_image_url(endpoint, image_id)}/file"
    transfer = fetch.open_url(policy.trusting(endpoint), url, headers=_headers(token))
    if transfer.status_code != 200:
        transfer.close()
        raise BadRequest(f"Downloading image {image_id} from {endpoint} failed: {transfer.status_code}.")
    return transfer.chunks(max_bytes)
