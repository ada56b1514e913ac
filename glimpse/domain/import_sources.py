"""Where an import's data comes from: the staging area, a web server, or another region's image service.

glance-download calls the remote service with the caller's own token, kept in this process's memory
only (never written to the database). Its task is therefore pinned to this process: no other process
can run it, and when this one stops, the task fails with a clear message instead of running tokenless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Image
from glimpse.domain.inputs import check_uuid
from glimpse.domain.ports import StagingArea
from glimpse.errors import BadRequest, Conflict, NotFound
from glimpse.formats.conversion import ProcessLimits
from glimpse.sources import remote_glance
from glimpse.sources.egress import EgressPolicy

TOKEN_LOST = "the caller's token was held by a process that stopped; start the import again"


@dataclass(frozen=True)
class ImportOptions:
    methods: tuple[str, ...]
    egress: EgressPolicy = field(default_factory=EgressPolicy)  # every fetch an import makes obeys it
    plugins: tuple[str, ...] = ()  # image_conversion, image_decompression, inject_image_metadata
    conversion_format: str = "raw"
    inject: dict[str, str] = field(default_factory=dict)
    inject_ignore_roles: tuple[str, ...] = ("admin",)
    remote_endpoints: dict[str, str] = field(default_factory=dict)  # region -> URL when there is no catalog
    download_properties: tuple[str, ...] = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
    qemu_limits: ProcessLimits = field(default_factory=ProcessLimits)


class Tokens:
    """Callers' tokens for glance-download tasks of this process, by task id (memory only)."""

    def __init__(self) -> None:
        self._tokens: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def keep(self, task_id: str, token: str | None) -> None:
        with self._lock:
            self._tokens[task_id] = token

    def has(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._tokens

    def get(self, task_id: str) -> str | None:
        with self._lock:
            return self._tokens.get(task_id)

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._tokens.pop(task_id, None)


class Sources:
    def __init__(
        self,
        options: ImportOptions,
        staging: StagingArea,
        download: Callable[[str, EgressPolicy, int | None], Iterator[bytes]],
        size_cap: int | None = None,
    ) -> None:
        self.options = options
        self.staging = staging
        self.download = download
        self.size_cap = size_cap  # image_size_cap: a fetch is cut off past it while it streams
        self.tokens = Tokens()

    def staged_url(self, image_id: str) -> str:
        return self.staging.url_for(image_id)

    def open(self, image: Image, method: dict[str, Any], task_id: str) -> Iterable[bytes]:
        name = method["name"]
        if name == "glance-direct":
            try:
                return self.staging.get(self.staged_url(image.id))
            except NotFound:
                raise NotFound(f"The staged data of image {image.id} is gone; stage it again.") from None
        if name == "web-download":
            return self.download(method["uri"], self.options.egress, self.size_cap)
        if name == "glance-download":
            if not self.tokens.has(task_id):
                raise Conflict(f"The import cannot run: {TOKEN_LOST}.")
            return remote_glance.download(
                method["endpoint"], method["glance_image_id"], self.tokens.get(task_id), self.options.egress,
                self.size_cap,
            )  # fmt: skip
        raise BadRequest(f"Import method {name} is not supported.")

    def prepare_remote(self, ctx: RequestContext, image: Image, method: dict[str, Any]) -> dict[str, Any]:
        """Look the remote image up with the caller's token; the local image inherits its metadata (set on
        `image`, for the caller to save). Returns the method with what the task needs to download it."""
        remote_id = method.get("glance_image_id")
        region = method.get("glance_region")
        if not isinstance(remote_id, str) or not isinstance(region, str):
            raise BadRequest("glance-download needs 'glance_image_id' and 'glance_region'.")
        try:
            check_uuid(remote_id, "glance_image_id")  # it becomes part of the remote image's URL
        except BadRequest:
            raise BadRequest("glance_image_id: the remote image id does not look like a UUID.") from None
        interface = method.get("glance_service_interface") or "public"
        endpoint = remote_glance.find_endpoint(ctx.service_catalog, self.options.remote_endpoints, region, interface)
        remote = remote_glance.remote_image(endpoint, remote_id, ctx.auth_token, self.options.egress)
        inherited = remote_glance.inherited_metadata(remote, self.options.download_properties)
        columns = {k: v for k, v in inherited.items() if k in remote_glance.INHERITED}
        for key, value in columns.items():
            setattr(image, key, value)
        image.properties.update({k: v for k, v in inherited.items() if k not in columns})
        return {
            **method,
            "endpoint": endpoint,
            "expect": remote.get("os_hash_value"),
            "algo": remote.get("os_hash_algo"),
        }
