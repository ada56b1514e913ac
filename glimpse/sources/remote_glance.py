"""Another Glance or Glimpse as an import source (glance-download): its image's metadata and data.

The remote endpoint comes from the caller's Keystone catalog (the image service in the named region
and interface) or, without Keystone, from the operator's [glance_download_opts] region_endpoints.
Calls carry the caller's own token, so they see exactly what the caller may see there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from glimpse.errors import BadRequest, NotFound

CHUNK = 1024 * 1024
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


def remote_image(endpoint: str, image_id: str, token: str | None) -> dict[str, Any]:
    import httpx  # loaded on the first glance-download only

    try:
        response = httpx.get(f"{endpoint}/v2/images/{image_id}", headers=_headers(token), timeout=30)
    except httpx.HTTPError as exc:
        raise BadRequest(f"The image service at {endpoint} could not be reached: {exc}.") from None
    if response.status_code == 404:
        raise NotFound(f"Image {image_id} was not found at {endpoint}.")
    if response.status_code != 200:
        raise BadRequest(f"The image service at {endpoint} answered {response.status_code} for image {image_id}.")
    image: dict[str, Any] = response.json()
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


def download(endpoint: str, image_id: str, token: str | None) -> Iterator[bytes]:
    import httpx

    with httpx.Client(timeout=60) as client:
        with client.stream("GET", f"{endpoint}/v2/images/{image_id}/file", headers=_headers(token)) as response:
            if response.status_code != 200:
                raise BadRequest(f"Downloading image {image_id} from {endpoint} failed: {response.status_code}.")
            yield from response.iter_bytes(CHUNK)
