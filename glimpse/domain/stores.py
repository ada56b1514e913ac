"""Operator work on stores while the service keeps serving: migrate images between stores, verify data.

Migration of one image, in an order that keeps every download working:
1. stream the data from the old store into the new one, hashing it on the way; a copy whose size,
   md5 or os_hash_value differs from the image record is deleted, never recorded;
2. with verify, read the new copy back and hash it again;
3. record the new location with a compare-and-swap on the image (still active/deactivated, same size
   and checksum), so an image deleted or re-uploaded meanwhile gets no stale location (its copy is removed);
4. only then, with delete_source, forget the old location (never the last one) and delete its data.
A download that picked the old location just before step 4 falls back to the new one (ImageService).
Images already on the new store are skipped, so an interrupted run is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from glimpse.domain.dedup import Dedup
from glimpse.domain.entities import Image, Location, StoreUsage
from glimpse.domain.ports import ImageRepository, Store, StoreRegistry
from glimpse.errors import BadRequest, Conflict, GlimpseError, NotFound, StoreError
from glimpse.logsafe import redact_url

PAGE = 100


class Progress(Protocol):
    """What a long operation reports; the CLI draws it with rich, tests record it."""

    def start_image(self, image: Image, total: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def end_image(self, image: Image, outcome: str) -> None: ...


class NoProgress:
    def start_image(self, image: Image, total: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def end_image(self, image: Image, outcome: str) -> None:
        pass


@dataclass(frozen=True)
class Outcome:
    image_id: str
    # copied | skipped | failed
    action: str
    detail: str = ""
    source_deleted: bool = False


@dataclass(frozen=True)
class Finding:
    image_id: str
    store_id: str | None
    url: str
    # missing | corrupt | unreadable | unknown-store
    problem: str
    detail: str


@dataclass(frozen=True)
class Collected:
    """What `gc` did with one piece of unreferenced data: removed, or kept and why (nothing: a dry run)."""

    finding: Finding
    removed: bool
    kept_because: str


@dataclass(frozen=True)
class Digest:
    size: int
    checksum: str
    hash_value: str | None


class StoreMaintenance:
    def __init__(
        self, repo: ImageRepository, stores: StoreRegistry, hashing_algorithm: str, dedup: Dedup | None = None
    ) -> None:
        """dedup: deduplicated storage (migrated copies link to twins the target holds already); off without it."""
        self.repo = repo
        self.stores = stores
        self.hashing_algorithm = hashing_algorithm
        self.dedup = dedup or Dedup(None, stores, False, hashing_algorithm)

    # --- listing -------------------------------------------------------------------------------------
    def images(self, store_id: str | None = None) -> Iterator[Image]:
        """Every image holding data (in store_id, when given), page by page in id order."""
        after: str | None = None
        while True:
            page = self.repo.with_data(after, PAGE)
            for image in page:
                if store_id is None or self._held_in(image, store_id):
                    yield image
            if len(page) < PAGE:
                return
            after = page[-1].id

    def _held_in(self, image: Image, store_id: str) -> list[Location]:
        return [loc for loc in image.locations if self.stores.store_id(loc.url, loc.metadata) == store_id]

    def _held_in_waiting(self, image_id: str, store_id: str) -> bool:
        waiting = self.repo.waiting_copies(image_id)
        return any(self.stores.store_id(loc.url, loc.metadata) == store_id for loc in waiting)

    # --- migrate -------------------------------------------------------------------------------------
    def check_migration(self, source: str, target: str) -> None:
        for name in (source, target):
            if name not in self.stores.stores:
                raise BadRequest(f"Store {name} is not configured (stores: {', '.join(self.stores.stores)}).")
        if source == target:
            raise BadRequest("The source and target stores are the same store.")
        if self.stores.stores[target].read_only:
            raise BadRequest(f"Store {target} is read-only.")

    def migrate(
        self,
        source: str,
        target: str,
        *,
        verify: bool = False,
        delete_source: bool = False,
        progress: Progress | None = None,
        images: Iterable[Image] | None = None,
    ) -> list[Outcome]:
        self.check_migration(source, target)
        progress = progress or NoProgress()
        return [
            self.migrate_image(image, source, target, verify=verify, delete_source=delete_source, progress=progress)
            for image in (images if images is not None else list(self.images(source)))
        ]

    def migrate_image(
        self, image: Image, source: str, target: str, *, verify: bool, delete_source: bool, progress: Progress
    ) -> Outcome:
        progress.start_image(image, image.size or 0)
        try:
            outcome = self._migrate(image, source, target, verify, delete_source, progress)
        except GlimpseError as exc:
            outcome = Outcome(image.id, "failed", exc.message)
        progress.end_image(image, outcome.action)
        return outcome

    def _migrate(
        self, image: Image, source: str, target: str, verify: bool, delete_source: bool, progress: Progress
    ) -> Outcome:
        image = self.repo.get(image.id)  # its current locations: another run may have moved it
        old = self._held_in(image, source)
        on_target = self._held_in(image, target)
        if on_target:
            action, detail = "skipped", f"already in {target}"
            if verify:
                problem = self._check(image, target, on_target[0], progress)
                if problem is not None:
                    return Outcome(image.id, "failed", f"the copy in {target} is {problem.problem}: {problem.detail}")
        elif not old:
            return Outcome(image.id, "skipped", f"not in {source}")
        elif self._held_in_waiting(image.id, target):
            # Its data waits for the scrubber under the very name this copy would be written to.
            return Outcome(
                image.id, "failed", f"its earlier copy in {target} is still being deleted: run `glimpse scrub` first"
            )
        else:
            copied = self._copy(image, old[0], target, verify, progress)
            if copied is None:
                return Outcome(image.id, "skipped", "deleted or re-uploaded during the copy; the copy was removed")
            action, detail = "copied", ""
        if delete_source and old:
            self._drop(image.id, old)
        return Outcome(image.id, action, detail, source_deleted=bool(delete_source and old))

    def _copy(self, image: Image, location: Location, target: str, verify: bool, progress: Progress) -> str | None:
        """The new location's URL once recorded; None when the image went away meanwhile."""
        reader = self.stores.for_location(location.url, location.metadata)
        writer = self.stores.stores[target]
        algo = image.os_hash_algo or self.hashing_algorithm
        size = image.size if image.size is not None else reader.size(location.url)
        chunks = _counted(reader.get(location.url), progress)
        stored = writer.add(image.id, chunks, max_size=size, expected_size=size, hash_algo=algo)
        new = Location(url=stored.url, metadata={"store": target, **stored.metadata})
        try:
            expected = Digest(image.size or stored.size, image.checksum or stored.checksum, image.os_hash_value)
            problem = _compare(expected, Digest(stored.size, stored.checksum, stored.hash_value))
            if problem is not None:
                where = redact_url(location.url)
                raise StoreError(f"the data read from {where} is corrupt: {problem}; nothing was recorded")
            if verify:
                found = self._check(image, target, new, progress)
                if found is not None:
                    raise StoreError(f"the new copy does not read back intact: {found.detail}")
            recorded = self.repo.add_location(
                image.id, new, size=image.size, checksum=image.checksum, shared=self.dedup.applies(writer)
            )
        except Conflict:
            self.dedup.discard_own(writer, stored.url)
            return None
        except BaseException:
            self.dedup.discard_own(writer, stored.url)
            raise
        if recorded != stored.url:  # the target held this data already: the image shares it
            self.dedup.discard_own(writer, stored.url)
        return recorded

    def _drop(self, image_id: str, locations: list[Location]) -> None:
        for location in locations:
            # Conflict for the last location: never happens here; shared data another image uses stays.
            if self.repo.remove_location(image_id, location.url):  # recorded as deleting until its data is gone
                self.stores.for_location(location.url, location.metadata).delete(location.url)
                self.repo.data_removed(image_id, location.url)

    # --- verify --------------------------------------------------------------------------------------
    def verify(
        self, store_id: str | None = None, progress: Progress | None = None, images: Iterable[Image] | None = None
    ) -> tuple[int, list[Finding]]:
        """Re-read every copy (in store_id, when given) of every image with data (or of `images`) and check
        size, md5 and os_hash_value. Returns how many copies were checked and what is wrong with them."""
        if store_id is not None and store_id not in self.stores.stores:
            raise BadRequest(f"Store {store_id} is not configured (stores: {', '.join(self.stores.stores)}).")
        progress = progress or NoProgress()
        checked, findings = 0, []
        for image in self.images() if images is None else images:
            for location in image.locations:
                held_by = self.stores.store_id(location.url, location.metadata)
                if store_id is not None and held_by != store_id:
                    continue
                checked += 1
                progress.start_image(image, image.size or 0)
                if held_by is None:
                    found: Finding | None = Finding(
                        image.id, None, location.url, "unknown-store", "no configured store reads this location"
                    )
                else:
                    found = self._check(image, held_by, location, progress)
                if found is not None:
                    findings.append(found)
                progress.end_image(image, "ok" if found is None else found.problem)
        return checked, findings

    def unreferenced(self, store_id: str | None = None) -> list[Finding]:
        """Data no image refers to, in the stores that can list what they hold (file and s3 stores): after a
        database restore, the images created since the backup. An upload finishing meanwhile shows too (`gc`
        tells the two apart before it removes anything)."""
        referenced = self.repo.referenced_urls()
        findings = []
        for name, store in self.stores.stores.items():
            listing = getattr(store, "stored_ids", None)
            if (store_id is not None and name != store_id) or listing is None or store.read_only:
                continue
            for key in listing():
                url = store.url_for(key)
                if url not in referenced:
                    findings.append(Finding(key, name, url, "unreferenced", "no image refers to this data"))
        return findings

    def usage(self) -> list[StoreUsage]:
        """Per store: logical bytes (each image's copy at its full size), physical bytes (shared data once)."""
        found = {usage.store: usage for usage in self.dedup.usage()}
        names = [*self.stores.stores, *sorted(set(found) - set(self.stores.stores))]
        return [found.get(name) or StoreUsage(name, 0, 0, 0, 0) for name in names]

    # --- gc --------------------------------------------------------------------------------------------
    def gc(self, store_id: str | None = None, apply: bool = False) -> tuple[list[Collected], list[str]]:
        """Data nothing references, removed (with apply) or only listed. Safe while uploads run on any node:
        each piece is checked again under its image's row lock, held while it is removed, so no upload of that
        image can begin meanwhile; data of an upload, staging or import in progress is never taken (stagings,
        tus uploads and partial or per-attempt names are not in the image stores' listings at all).
        Also returns the images whose uploads died holding a reference to shared data (released with apply)."""
        if store_id is not None and store_id not in self.stores.stores:
            raise BadRequest(f"Store {store_id} is not configured (stores: {', '.join(self.stores.stores)}).")
        collected = [self._collect(finding, apply) for finding in self.unreferenced(store_id)]
        stale = self.dedup.stale_pins()
        if apply:
            for image_id in stale:
                self.dedup.release(image_id)
        return collected, stale

    def _collect(self, finding: Finding, apply: bool) -> Collected:
        if not _is_image_id(finding.image_id):
            return Collected(finding, False, "not named like image data")
        assert finding.store_id is not None
        with self.repo.holding(finding.image_id, finding.url) as (referenced, image):
            if referenced:
                return Collected(finding, False, "recorded meanwhile")
            reason = _in_use(image, finding.store_id, self.stores)
            if reason is not None or not apply:
                return Collected(finding, False, reason or "")
            self.stores.stores[finding.store_id].delete(finding.url)
            return Collected(finding, True, "")

    def _check(self, image: Image, store_id: str, location: Location, progress: Progress) -> Finding | None:
        store = self.stores.stores[store_id]
        try:
            digest = _digest(store, location.url, image.os_hash_algo, progress)
        except NotFound as exc:
            return Finding(image.id, store_id, location.url, "missing", exc.message)
        except GlimpseError as exc:
            return Finding(image.id, store_id, location.url, "unreadable", exc.message)
        expected = Digest(image.size or 0, image.checksum or "", image.os_hash_value)
        problem = _compare(expected, digest)
        if problem is not None:
            return Finding(image.id, store_id, location.url, "corrupt", problem)
        return None


def _is_image_id(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name.lower()
    except ValueError:
        return False


def _in_use(image: Image | None, store_id: str, stores: StoreRegistry) -> str | None:
    """Why unreferenced data named after `image` may still be on its way to being recorded; None when it cannot.

    Nothing writes under the name of an image that does not exist, is deleted or killed; a queued one cannot start
    an upload while its row is held; an active image already holding a copy in that store is not copied there
    again (the data is a copy made redundant at publishing, left by a process that died before removing it)."""
    if image is None or image.status in ("deleted", "pending_delete", "killed", "queued"):
        return None
    if image.status in ("active", "deactivated") and any(
        stores.store_id(loc.url, loc.metadata) == store_id for loc in image.locations
    ):
        return None
    return f"image {image.id} is {image.status}: its data may still be being written"


def _counted(chunks: Iterator[bytes], progress: Progress) -> Iterator[bytes]:
    try:
        for chunk in chunks:
            progress.advance(len(chunk))
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _digest(store: Store, url: str, hash_algo: str | None, progress: Progress) -> Digest:
    md5 = hashlib.md5(usedforsecurity=False)
    multihash = hashlib.new(hash_algo) if hash_algo else None
    size = 0
    for chunk in _counted(store.get(url), progress):
        size += len(chunk)
        md5.update(chunk)
        if multihash is not None:
            multihash.update(chunk)
    return Digest(size, md5.hexdigest(), multihash.hexdigest() if multihash is not None else None)


def _compare(expected: Digest, found: Digest) -> str | None:
    if expected.size != found.size:
        return f"size {found.size} instead of {expected.size}"
    if expected.checksum and expected.checksum != found.checksum:
        return f"md5 {found.checksum} instead of {expected.checksum}"
    if expected.hash_value and expected.hash_value != found.hash_value:
        return "os_hash_value differs from the image's"
    return None
