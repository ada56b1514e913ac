"""The interfaces the domain needs, as Protocols: db/ and store/ implement them, app.py passes them in.

Like entities.py this is a leaf of the domain (it imports only the entity modules and the standard library), so an
implementation may name the Protocol it satisfies without depending on any use case.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from glimpse.domain.entities import (
    BinnedImage,
    CachedImage,
    CacheExpectation,
    DataKey,
    Fence,
    Image,
    ImageQuery,
    ImageSnapshot,
    Location,
    ManagedCertificate,
    Member,
    ProjectLimits,
    ProjectUsage,
    ResumableUpload,
    ScrubClaim,
    StoredData,
    StoreInfo,
    StoreUsage,
    Task,
)


class ImageRepository(Protocol):
    """Images, their members and locations; every status change is a compare-and-swap."""

    def get(self, image_id: str) -> Image: ...

    def members(self, image_id: str) -> builtins.list[Member]: ...

    def member(self, image_id: str, member_id: str) -> Member: ...

    def add_member(self, image_id: str, member_id: str, quota: int) -> Member:
        """Add a pending member; Conflict when it is one already, TooLarge past the quota."""
        ...

    def set_member_status(self, image_id: str, member_id: str, status: str) -> Member: ...

    def delete_member(self, image_id: str, member_id: str) -> None: ...

    def member_status(self, image_id: str, project_id: str) -> str | None: ...

    def list(self, q: ImageQuery) -> builtins.list[Image]: ...

    def property_values(self, q: ImageQuery, name: str, after: str | None, limit: int) -> builtins.list[str]:
        """The distinct values of one property among the images the query finds, in order, after `after`."""
        ...

    def add(self, image: Image, max_images: int | None = None) -> Image:
        """Insert the image; with max_images, only while its project owns fewer images than that."""
        ...

    def save(self, image: Image) -> Image:
        """Write every mutable field, only if nobody saved the image since it was read (else 409)."""
        ...

    def transition(
        self,
        image_id: str,
        from_status: str,
        to_status: str,
        fence: Fence | None = None,
        if_claim: str | None = None,
        **values: Any,
    ) -> None:
        """Move the image between statuses atomically; Conflict when it is no longer in from_status, or
        (with a fence, or if_claim: an upload's claim token) when that claim was lost: one transaction."""
        ...

    def with_data(self, after: str | None = None, limit: int = 100) -> builtins.list[Image]:
        """A page of the images holding data (active or deactivated), in id order after `after`."""
        ...

    def referenced_urls(self) -> set[str]:
        """Every location any image (a deleted one waiting for the scrubber included) still refers to."""
        ...

    def holding(self, image_id: str, url: str) -> AbstractContextManager[tuple[bool, Image | None]]:
        """Under the image's row lock until the block ends (no upload can begin, no copy be recorded meanwhile):
        whether url is referenced (by a copy or as shared data), and the image (None when there is none)."""
        ...

    def remove_location(self, image_id: str, url: str, delayed: bool = False) -> bool:
        """Forget one copy of the data; Conflict when it is the image's last one, NotFound when absent.
        True when the data is to be removed now (shared data another image still uses stays): the copy stays
        recorded until `data_removed`. delayed: the copy stays, pending_delete, for the scrubber."""
        ...

    def delete(
        self, image_id: str, revision: int | None = None, delayed: bool = False, keep_for: timedelta | None = None
    ) -> builtins.list[Location]:
        """Mark the image deleted (its id stays reserved) and hand back the locations to purge.

        A compare-and-swap: only an unprotected image (Forbidden otherwise) and, given the revision the
        caller read, only if nobody changed it since (Conflict): a racing protected=true always wins.
        delayed: a non-queued image goes to pending_delete with its data kept for the scrubber.
        keep_for: the recycle bin keeps any image (record, members, tags, properties, data) that long."""
        ...

    def waiting_copies(self, image_id: str) -> builtins.list[Location]:
        """The image's copies whose data is still to be removed (pending_delete or deleting), for the scrubber."""
        ...

    def data_removed(self, image_id: str, url: str) -> None:
        """The copy at url, being deleted, is gone from its store (until then `glimpse scrub` would remove it)."""
        ...

    def begin_upload(
        self, image_id: str, owner: str | None, node: str, max_uploading: int | None, to_status: str = "saving"
    ) -> str:
        """queued -> saving (or uploading, for staging) for this node; with max_uploading, only while the
        project has fewer uploads in progress. Returns the upload's claim token: only the holder of the
        current token may publish, beat or give the image back."""
        ...

    def staged(self, image_id: str, claim: str, url: str) -> None:
        """The staging under `claim` completed: record where its data waits; Conflict when the image was
        deleted or given back meanwhile (the caller then removes the staged file)."""
        ...

    def upload_heartbeat(self, image_id: str, claim: str) -> bool:
        """Still the image's upload? False once it was deleted, swept or taken by another upload."""
        ...

    def statuses(self, image_ids: Sequence[str]) -> dict[str, str]:
        """Status of each image still there (deleted images are left out)."""
        ...

    def abandoned_uploads(self, older_than: timedelta) -> builtins.list[tuple[str, str, str]]:
        """(image id, status, node) of uploads and stagings whose writer stopped beating."""
        ...

    def set_internal_properties(
        self,
        image_id: str,
        values: dict[str, str],
        remove: tuple[str, ...] = (),
        fence: Fence | None = None,
        expect: Mapping[str, str | None] | None = None,
    ) -> None:
        """Server-kept properties (os_glance_*), changed without touching the user's revision. With `expect`, only
        while those properties still have those values (None: absent); Conflict otherwise."""
        ...

    def ids_in_status_on(self, status: str, node: str) -> builtins.list[str]: ...

    def activate(
        self,
        image_id: str,
        from_status: str,
        location: Location,
        *,
        extra: Sequence[Location] = (),
        fence: Fence | None = None,
        if_claim: str | None = None,
        properties: Mapping[str, str] | None = None,
        remove_properties: tuple[str, ...] = (),
        shared: bool = False,
        **values: Any,
    ) -> builtins.list[Location]:
        """Publish data: status, checksums and locations in one compare-and-swap, which also checks the
        task's claim (fence) or the upload's claim token (if_claim) when given. ClaimLost/Conflict otherwise.
        Server-kept properties change in the same commit: nobody sees the image active without them.
        shared: a copy whose twin (same size and sha512) its store holds already is recorded under the twin's
        URL, in the same commit; the copies so made redundant are returned for the caller to remove."""
        ...

    def add_location(
        self,
        image_id: str,
        location: Location,
        *,
        size: int | None,
        checksum: str | None,
        fence: Fence | None = None,
        virtual_size: int | None = None,
        shared: bool = False,
    ) -> str:
        """Record one more copy of the data, only while the image still holds that very data (a compare-and-
        swap on status, size and checksum, and on the task's claim with a fence); Conflict when it was
        deleted or its data changed meanwhile. The copy now counts as stored: its reservation shrinks.
        virtual_size (the copy's, as inspected) fills the image's when it has none.
        Returns the URL recorded: with `shared`, a twin's the store holds already (the caller removes its copy)."""
        ...


class SharedDataRepository(Protocol):
    """Deduplicated data's references that are not an image's location (db/shared_data.py has the rules)."""

    def pin(self, image_id: str, claim: str, key: DataKey, project: str | None) -> str | None:
        """The URL of the data `key` names, now held for the upload `claim` of image_id (which writes nothing);
        None when the store holds no such data that `project` can already see (its own images', public ones')."""
        ...

    def unpin(self, image_id: str, claim: str | None = None) -> builtins.list[Location]:
        """Uploads that gave up let their pins go (the upload `claim`'s, or every pin of image_id no live upload
        holds); returns the data nothing uses any more, to remove."""
        ...

    def stale_pins(self) -> builtins.list[str]:
        """Images with pins no live upload holds (their writer died)."""
        ...

    def is_shared(self, url: str) -> bool:
        """Whether url is deduplicated data that images or uploads still refer to."""
        ...

    def usage(self) -> builtins.list[StoreUsage]:
        """Per store: bytes of image data as the images see it, and as the store holds it."""
        ...


class TaskRepository(Protocol):
    """Import tasks and the fenced claims workers hold on them."""

    def create(
        self,
        task_type: str,
        owner: str | None,
        image_id: str | None,
        task_input: dict[str, Any],
        user_id: str | None,
        request_id: str | None,
        pinned_node: str | None = None,
    ) -> Task:
        """pinned_node: only that process may claim the task; it keeps heartbeat_at fresh while it waits."""
        ...

    def release(self, task_id: str, hold: str, pinned_node: str | None) -> bool:
        """A task created held (pinned to `hold`) may run now: pinned to pinned_node, or free for any worker.
        False when it is no longer held: it was given up meanwhile."""
        ...

    def get(self, task_id: str) -> Task: ...

    def list(
        self,
        owner: str | None = None,
        image_id: str | None = None,
        limit: int = 100,
        status: str | None = None,
        task_type: str | None = None,
    ) -> builtins.list[Task]: ...

    def claim(self, node: str, stale_after: timedelta) -> Task | None:
        """Take one pending task, or one whose runner stopped beating; None when there is nothing to do.

        A pinned task is only ever taken by its own process, and never taken over."""
        ...

    def heartbeat(self, fence: Fence, message: str | None = None) -> bool:
        """Still mine? Refreshes the heartbeat (and the progress message); False when another took it over."""
        ...

    def touch_pinned(self, node: str) -> None:
        """The pinned process is alive: its waiting tasks must not be given up as orphans."""
        ...

    def orphaned_pinned(self, stale_after: timedelta) -> builtins.list[Task]:
        """Pinned tasks whose process stopped beating: nobody else can run them."""
        ...

    def claim_orphan(self, task: Task, node: str) -> Task | None:
        """Claim an orphaned pinned task only to fail it (compare-and-swap on its generation)."""
        ...

    def release_node_prefix(self, prefix: str) -> int:
        """After a restart: the node's running tasks (workers named prefix...) go back to pending (their
        processes are gone: the next claim raises the generation)."""
        ...

    def pinned_prefix(self, prefix: str) -> builtins.list[Task]:
        """After a restart: pinned tasks of the node's former processes (their tokens died with them)."""
        ...

    def finish(self, fence: Fence, status: str, message: str, result: dict[str, Any]) -> bool:
        """End the task, only while the claim is still this one; False when it was taken over."""
        ...

    def abandon(self, task_id: str, message: str) -> None:
        """A task that never started (its image changed meanwhile) ends as a failure."""
        ...


class QuotaRepository(Protocol):
    """Per-project limits, usage, and the reservations uploads and imports hold while bytes flow."""

    def limits(self, project_id: str) -> ProjectLimits: ...

    def all_limits(self) -> dict[str, ProjectLimits]: ...

    def set_limits(self, project_id: str, limits: ProjectLimits) -> None: ...

    def usage(self, project_id: str) -> ProjectUsage: ...

    def reserve(
        self, image_id: str, project_id: str, want: int, limit: int | None, stage_limit: int | None = None
    ) -> int:
        """Reserve up to `want` more bytes for the upload of image_id, within the project's byte limit and,
        for staged data, its staging limit; returns how many were granted."""
        ...

    def reserve_up_to(
        self, image_id: str, project_id: str, total: int, limit: int | None, stage_limit: int | None = None
    ) -> bool:
        """Make the image's reservation at least `total` bytes, within the limits; False when it cannot.

        Unlike reserve, calling it again with the same total reserves nothing more: a worker that takes
        an import over does not count the bytes of the attempt it replaces a second time."""
        ...

    def sweep(self) -> int:
        """Drop reservations with no live upload or import behind them (image gone, or neither uploading,
        staged, importing, nor being copied by a pending or running task); returns how many went."""
        ...

    def headroom(self, image_id: str, project_id: str, limit: int) -> int:
        """What the image's reservation could grow to within `limit` (its own reservation included)."""
        ...

    def release(self, image_id: str) -> None: ...


class Store(Protocol):
    """One configured store (a driver instance). The attributes are read-only to its users, so a driver
    may declare them as plain attributes with narrower types."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def schemes(self) -> tuple[str, ...]:
        """Location URL schemes this driver reads, e.g. ("s3", "s3+http", "s3+https")."""
        ...

    @property
    def read_only(self) -> bool:
        """A read-only store (http) serves data registered by URL; add raises StoreError."""
        ...

    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        """Write data under a temporary name, hashing it; publish it under its final name only when complete.

        Raises TooLarge past max_size, BadRequest when expected_size is given and not met, StoreFull,
        StoreError; the temporary data is gone whenever it raises.
        """
        ...

    def url_for(self, image_id: str) -> str:
        """The location the store gives an image's data."""
        ...

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream `length` bytes (all remaining when None) from `offset`.

        Raises NotFound (or StoreError, StoreUnavailable) before returning, so a caller can fall back to
        another location; the iterator releases its connection or file when exhausted or closed.
        """
        ...

    def size(self, url: str) -> int:
        """Bytes stored at url. Raises NotFound."""
        ...

    def delete(self, url: str) -> None:
        """Remove the data; data already gone is not an error."""
        ...

    def properties(self) -> dict[str, object]:
        """What /v2/info/stores/detail shows about the store (no secrets)."""
        ...

    def recover(self, node: str) -> int:
        """Remove partial data a crashed writer `node` left behind; returns how many were removed."""
        ...

    def discard_partial(self, image_id: str, node: str) -> None:
        """Remove the partial data of one image that the dead writer `node` left behind."""
        ...


@runtime_checkable
class PieceStore(Protocol):
    """A store that can take an image's data in pieces, over many requests and from any node (tus uploads).

    A handle is the store's own record (a short string the caller keeps in the database) of the pieces
    written so far; every write returns a new one, and a handle the caller did not keep names nothing that
    counts. So a writer that lost its claim cannot change data another writer committed."""

    def begin_pieces(self, image_id: str, upload_id: str) -> str:
        """The handle of an upload with no data yet."""
        ...

    def append_piece(self, handle: str, chunks: Iterable[bytes]) -> str:
        """Store `chunks` after what `handle` holds; the new handle. All or nothing: when it raises, what it
        wrote is gone and `handle` is still whole."""
        ...

    def assemble(self, image_id: str, handles: Sequence[str]) -> str:
        """Join the uploads' data, in order, into the image's data; its location. The handles are used up
        (their pieces belong to the result or are gone); on failure nothing is left under the image's name."""
        ...

    def drop_pieces(self, handle: str, keep: str | None = None) -> None:
        """Remove what `handle` holds, except what `keep` (a handle it grew from, or into) still needs."""
        ...


class ResumableUploadRepository(Protocol):
    """tus uploads in progress; a PATCH holds a claim on its upload while its bytes flow (one writer at a time)."""

    def add(self, upload: ResumableUpload) -> None: ...

    def get(self, upload_id: str) -> ResumableUpload:
        """NotFound when there is no such upload (any more)."""
        ...

    def of_image(self, image_id: str) -> builtins.list[ResumableUpload]: ...

    def claim(self, upload_id: str, offset: int, stale_after: timedelta) -> str:
        """The upload for one PATCH at `offset`; Conflict when the offset is not the upload's or another PATCH
        holds it (and still beats). Returns the claim token."""
        ...

    def beat(self, upload_id: str, claim: str) -> bool:
        """Still this PATCH's? Refreshes its heartbeat."""
        ...

    def advance(
        self, upload_id: str, claim: str, offset: int, new_offset: int, handle: str, expires_at: datetime, keep: bool
    ) -> None:
        """Record the bytes a PATCH added (compare-and-swap on its claim and offset; Conflict otherwise).
        keep: the PATCH still holds the upload afterwards (it goes on to publish it)."""
        ...

    def release(self, upload_id: str, claim: str) -> None:
        """The PATCH ends without adding anything."""
        ...

    def remove(self, upload_ids: Sequence[str]) -> None: ...

    def finished(self, now: datetime, stale_after: timedelta) -> builtins.list[ResumableUpload]:
        """Uploads past their expiry, or whose image was deleted or no longer waits for them, that no PATCH
        writes (one whose heartbeat is older than stale_after is not writing any more)."""
        ...


class StagingArea(Store, Protocol):
    """The store glance-direct data waits in, which can list what it holds."""

    def stored_ids(self) -> builtins.list[str]:
        """The image ids of the complete data held."""
        ...


class StoreRegistry(Protocol):
    """The configured stores by id, the default one, and lookup by location."""

    # Multi-store mode (enabled_backends): store ids are shown to users and chosen by them.
    multi: bool
    default: str

    @property
    def stores(self) -> Mapping[str, Store]: ...

    @property
    def info(self) -> Mapping[str, StoreInfo]:
        """The description and weight of every configured store, by id."""
        ...

    def get(self, name: str) -> Store: ...

    def writable(self, name: str | None) -> Store: ...

    def writable_ids(self) -> builtins.list[str]: ...

    def store_id(self, url: str, metadata: dict[str, str]) -> str | None: ...

    def for_location(self, url: str, metadata: dict[str, str]) -> Store: ...

    def by_weight(self, locations: Sequence[Location]) -> builtins.list[Location]: ...


class ImageSnapshots(Protocol):
    """Whole images, tombstones included, as an import from another image service reads and writes them."""

    def read(self, image_id: str) -> ImageSnapshot | None: ...

    def write(self, snapshot: ImageSnapshot) -> None: ...


class CertificateSource(Protocol):
    """The key manager (castellan: Barbican) that holds the certificates image signatures are checked against.

    It is asked with the caller's own token, as Glance asks it: a user sees only the certificates their project may
    read. Raises NotFound for an unknown certificate, KeyManagerUnavailable when the key manager cannot be reached,
    KeyManagerRefused for any other failure."""

    def certificate(self, cert_id: str, auth_token: str | None, project_id: str | None) -> ManagedCertificate: ...


class CacheWriter(Protocol):
    """One image being written into the cache; only a complete copy matching its expectation is published."""

    def write(self, chunk: bytes) -> None: ...

    def finish(self) -> bool:
        """Verify and publish; False (the copy set aside, never served) when size or a checksum differs."""
        ...

    def abort(self) -> None: ...


class ImageCache(Protocol):
    """A node-local cache of image data (Glance's image cache), shared by the node's processes."""

    def read(self, image_id: str, expected: CacheExpectation, start: int, length: int) -> Iterator[bytes] | None:
        """The bytes from the cached copy (a hit, counted), or None when no verified copy is here."""
        ...

    def writer(self, image_id: str, expected: CacheExpectation) -> CacheWriter | None:
        """A writer, or None when the image is cached already or another process is writing it."""
        ...

    def count_miss(self) -> None: ...

    def counters(self) -> dict[str, int]:
        """Downloads served from the cache (hits) and from a store while the cache was on (misses)."""
        ...

    def is_cached(self, image_id: str) -> bool: ...

    def cached_images(self) -> builtins.list[CachedImage]: ...

    def queued_images(self) -> builtins.list[str]: ...

    def queue(self, image_id: str) -> bool: ...

    def delete_cached(self, image_id: str) -> bool: ...

    def delete_queued(self, image_id: str) -> bool: ...

    def delete_all_cached(self) -> int: ...

    def delete_all_queued(self) -> int: ...

    def prune(self) -> tuple[int, int]:
        """Least recently used copies out until the cache is within its size; (files, bytes) removed."""
        ...

    def clean(self) -> None:
        """Remove set-aside copies, stalled partial ones and files no record vouches for."""
        ...


class CacheNodeRecords(Protocol):
    """Which nodes cache which image, in the shared database (Glance's centralized_db driver): this node's
    copies, recorded by the node cache as they come and go, and every node's, for GET /v2/cache/nodes/{id}."""

    def add(self, image_id: str, size: int, checksum: str | None) -> None: ...

    def hit(self, image_id: str) -> None: ...

    def remove(self, image_id: str) -> None: ...

    def sync(self, cached: builtins.list[CachedImage]) -> None:
        """This node's records become exactly `cached` (what its own records vouch for)."""
        ...

    def nodes(self, image_id: str) -> builtins.list[str]:
        """The worker_self_reference_url of every node holding a copy."""
        ...


class ScrubQueue(Protocol):
    """The data delayed delete keeps, and the data deletions could not remove, claimed one image at a time
    (db/scrub_queue.py has the details)."""

    def due(self, older_than: timedelta, limit: int = 1000) -> builtins.list[str]:
        """Images deleted (pending_delete) longer ago than older_than, and live images with a copy waiting."""
        ...

    def leftovers(self, older_than: timedelta, limit: int = 1000) -> builtins.list[str]:
        """Images (never pending_delete) with a copy a deletion could not remove, left longer than older_than."""
        ...

    def claim(self, image_id: str, node: str, stale_after: timedelta) -> ScrubClaim | None:
        """The image for this scrubber, or None while another holds it with a fresh heartbeat."""
        ...

    def beat(self, claim: ScrubClaim) -> bool:
        """Still mine? Refreshes the heartbeat."""
        ...

    def start_deleting(self, claim: ScrubClaim) -> builtins.list[tuple[int, Location]]:
        """The waiting copies become unrestorable; every copy being deleted, by its row id. ClaimLost."""
        ...

    def copy_deleted(self, claim: ScrubClaim, location_id: int) -> None:
        """That copy's data is gone. ClaimLost."""
        ...

    def finish(self, claim: ScrubClaim) -> str | None:
        """Release the claim; a pending_delete image with no copy left becomes deleted (returned). ClaimLost."""
        ...

    def release(self, claim: ScrubClaim) -> None:
        """Give the image back for the next run."""
        ...

    def restore(
        self,
        image_id: str,
        stale_after: timedelta,
        check: Callable[[builtins.list[Location]], None],
        *,
        from_bin: bool = False,
        max_images: int | None = None,
    ) -> str:
        """pending_delete -> the status it had (active when unknown), or NotFound / Conflict saying why not;
        check(copies) may refuse too. from_bin: only an image still in the recycle bin (NotFound otherwise);
        max_images: only while its owner has fewer images (TooLarge otherwise). Returns the status restored."""
        ...

    def expire(self, image_id: str) -> None:
        """The binned image leaves the bin now (its data is due for the scrubber); NotFound when not in the bin."""
        ...


class RecycleBinRepository(Protocol):
    """The images in the recycle bin and the retention periods administrators set per project."""

    def retention(self, project_id: str) -> int | None:
        """The project's own period in seconds, None when it follows the default."""
        ...

    def all_retention(self) -> dict[str, int]: ...

    def set_retention(self, project_id: str, seconds: int | None) -> None: ...

    def binned(self, owner: str | None, limit: int, marker: str | None = None) -> builtins.list[BinnedImage]:
        """Images in the bin now (not expired), newest deletion first; owner None: every project's."""
        ...

    def binned_image(self, image_id: str) -> BinnedImage:
        """One image in the bin now; NotFound otherwise."""
        ...


class DataMeter(Protocol):
    """Counts image data coming into the service, by the way it came (the metrics, when they are on)."""

    def received(self, operation: str, size: int) -> None:
        """operation: dashboard, web-download, glance-download, copy-image, ..."""
        ...


class Notifier(Protocol):
    """Where the domain's events go (Glance's notifications). It must return at once: a request never waits
    for the message bus, and a bus that is away never fails a request."""

    def notify(self, priority: str, event_type: str, payload: dict[str, Any] | str) -> None:
        """priority: "info" or "error", as oslo.messaging names them; an error's payload may be a message."""
        ...
