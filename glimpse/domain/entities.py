"""The domain's entities: plain data the use cases apply their rules to and the repositories and stores build.

A leaf module: it imports nothing but the standard library, so db/ and store/ may build these records
without depending on any rule of the domain (docs/architecture.md says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass
class Location:
    url: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Image:
    id: str
    owner: str | None
    name: str | None = None
    status: str = "queued"
    visibility: str = "shared"
    protected: bool = False
    os_hidden: bool = False
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    size: int | None = None
    virtual_size: int | None = None
    container_format: str | None = None
    disk_format: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    tags: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    locations: list[Location] = field(default_factory=list)
    # Compare-and-swap counter: every save checks it so no concurrent update is lost.
    revision: int = 0

    @property
    def has_data(self) -> bool:
        return bool(self.locations) and self.status in ("active", "deactivated")


@dataclass
class Member:
    image_id: str
    member_id: str
    status: str = "pending"
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class ImageSnapshot:
    """Everything stored about one image, tombstone or not: what an import from another database writes."""

    image: Image
    deleted: bool = False
    deleted_at: datetime | None = None
    members: list[Member] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    """A filter value with its operator: eq, neq, gt, gte, lt, lte or in."""

    op: str
    value: object


@dataclass
class ImageQuery:
    """What GET /v2/images asks for, already parsed and checked."""

    # Visibility scope, computed by the domain from the caller and the visibility filter.
    viewer: str | None = None  # project id of a non-admin caller; None for an admin
    admin_project: str | None = None  # an admin's own project (its community images are listed)
    visibility: str | None = None
    member_status: str = "accepted"
    columns: dict[str, Comparison] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    size_min: int | None = None
    size_max: int | None = None
    os_hidden: bool | None = False
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    limit: int = 25
    marker: str | None = None


@dataclass
class Task:
    id: str
    type: str
    status: str
    owner: str | None
    image_id: str | None
    input: dict[str, Any]
    result: dict[str, Any] | None = None
    message: str = ""
    user_id: str | None = None
    request_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    node: str | None = field(default=None, repr=False)
    generation: int = 0
    pinned_node: str | None = None
    heartbeat_at: datetime | None = None

    @property
    def fence(self) -> Fence:
        return Fence(self.id, self.generation)


@dataclass(frozen=True)
class Fence:
    """The claim a worker holds on a task: valid while the task's generation is still this one."""

    task_id: str
    generation: int


@dataclass(frozen=True)
class ScrubClaim:
    """A scrubber's claim on an image whose data waits for it: valid while the image holds this token."""

    image_id: str
    token: str


@dataclass(frozen=True)
class ProjectLimits:
    """None means no limit of that kind for the project."""

    image_count_total: int | None = None
    image_size_total: int | None = None  # bytes
    image_stage_total: int | None = None  # bytes
    image_count_uploading: int | None = None


LIMIT_NAMES = tuple(f.name for f in fields(ProjectLimits))


@dataclass(frozen=True)
class ProjectUsage:
    image_count_total: int
    image_size_total: int  # bytes stored plus bytes reserved by uploads in progress
    image_stage_total: int
    image_count_uploading: int


@dataclass(frozen=True)
class StoredData:
    """What a store reports once data is written in full."""

    url: str
    size: int
    checksum: str
    hash_algo: str
    hash_value: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResumableUpload:
    """One tus upload of an image's data: how far it got, where its pieces are, until when it may go on.

    kind: whole (the image's data), partial (one part of a parallel upload) or final (the parts joined).
    handle: the store's own record of the pieces written so far (opaque here). image_claim: the image's upload
    claim (repository.begin_upload), which publishing or giving the image back needs."""

    id: str
    image_id: str
    owner: str | None
    kind: str
    length: int
    offset: int
    store: str
    handle: str
    image_claim: str
    expires_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    repr_digest: str = ""  # the client's Repr-Digest of the whole data (RFC 9530), checked once it is all in

    @property
    def complete(self) -> bool:
        return self.offset == self.length


@dataclass(frozen=True)
class DataKey:
    """What makes two copies the same data for deduplication: the store holding them, their size and sha512."""

    store: str
    size: int
    sha512: str


@dataclass(frozen=True)
class StoreUsage:
    """One store's image data: logical bytes (every image's copy at its full size), physical bytes (data held,
    shared data once), and how many copies share data held once."""

    store: str
    logical: int
    physical: int
    copies: int
    shared_copies: int

    @property
    def saved(self) -> int:
        return self.logical - self.physical


@dataclass(frozen=True)
class StoreInfo:
    """What the operator said about a store beyond its driver options."""

    description: str = ""
    weight: int = 0


@dataclass(frozen=True)
class ManagedCertificate:
    """A certificate as the key manager holds it: its format ("X.509" for a certificate secret) and its DER bytes."""

    format: str
    data: bytes


@dataclass(frozen=True)
class TaskQueue:
    """The import tasks of the whole service waiting and running, for the operator's metrics and status."""

    pending: int
    processing: int
    oldest_pending_age: float  # seconds; 0 when nothing waits


@dataclass(frozen=True)
class CachedImage:
    """One image file in a node's image cache, as Glance's GET /v2/cache lists it (times in epoch seconds)."""

    image_id: str
    size: int
    hits: int
    last_accessed: float
    last_modified: float


@dataclass(frozen=True)
class CacheExpectation:
    """What a cached copy must match to be served or published: the image's size and checksums."""

    size: int
    checksum: str | None
    hash_algo: str | None
    hash_value: str | None
