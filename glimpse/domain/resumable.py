"""Resumable uploads (tus 1.0): an image's data sent in as many requests as the link needs, to any node.

The rules are PUT .../file's: the upload_image policy, disk and container formats set first, image_size_cap, the
project's quota reserved ahead for the whole Upload-Length (released on every failure, termination and expiry), the
count of uploads in progress. The image leaves queued (saving) when the first upload is created and becomes active
only once the last byte is in and the whole, read back from the store, was hashed, inspected (a refused format
refuses the upload) and, for a signed image, verified.

State lives in the database and bytes in the store, so any node takes the next PATCH. Each PATCH claims its upload
with a compare-and-swap on the offset it starts from and writes a piece of its own (domain/ports.py:PieceStore):
of two PATCHes racing on one upload one wins, the other gets 409, and bytes are never interleaved. A PATCH cut short
(the client gone) keeps what arrived, unless it announced a checksum, which then cannot be verified.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from glimpse.auth.context import RequestContext
from glimpse.domain import digests
from glimpse.domain.access import ImageAccess
from glimpse.domain.entities import Image, ResumableUpload
from glimpse.domain.image_data import ImageData
from glimpse.domain.limits import Limits
from glimpse.domain.ports import ImageRepository, PieceStore, ResumableUploadRepository, Store, StoreRegistry
from glimpse.domain.quotas import QuotaService
from glimpse.errors import BadRequest, Conflict, Forbidden, GlimpseError, Gone, NotFound, TooLarge
from glimpse.formats.inspection import FormatGuard, FormatRules
from glimpse.store.base import HashingMeter, Heartbeat
from glimpse.tus import Checksum, ChecksumMismatch, Concat

log = logging.getLogger(__name__)

WHOLE, PARTIAL, FINAL = "whole", "partial", "final"
# A partial upload created while another one takes the image out of queued waits this long for it to be recorded.
JOIN_ATTEMPTS, JOIN_WAIT = 40, 0.05


@dataclass(frozen=True)
class UploadTiming:
    expire_after: timedelta  # an upload with no PATCH for this long is swept (tus's expiration)
    stale_after: timedelta  # a PATCH that stopped beating this long ago no longer holds its upload


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as the database keeps it


def pieces_of(store: Store) -> PieceStore:
    if isinstance(store, PieceStore):
        return store
    raise BadRequest(
        f"Store {store.name} ({store.type}) cannot take an upload in pieces: upload with PUT .../file, "
        "or choose another store."
    )


class ChunkReader:
    """A PATCH's bytes on their way to the store: at most `room` of them, hashed when a checksum was announced.

    The checks raise from the iteration itself, so the store's append discards the piece."""

    def __init__(self, chunks: Iterable[bytes], room: int, checksum: Checksum | None) -> None:
        self._chunks = chunks
        self._room = room
        self._checksum = checksum
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        hasher = self._checksum.hasher() if self._checksum else None
        for chunk in self._chunks:
            self.size += len(chunk)
            if self.size > self._room:
                raise TooLarge(f"The chunk goes past the upload's Upload-Length ({self._room} bytes were left).")
            if hasher is not None:
                hasher.update(chunk)
            yield chunk
        if self._checksum is not None and hasher is not None and hasher.digest() != self._checksum.digest:
            raise ChecksumMismatch(f"The chunk's {self._checksum.algorithm} digest is not Upload-Checksum's.")


class ResumableUploads:
    def __init__(
        self,
        repo: ImageRepository,
        uploads: ResumableUploadRepository,
        stores: StoreRegistry,
        data: ImageData,
        access: ImageAccess,
        quotas: QuotaService,
        limits: Limits,
        format_rules: FormatRules,
        timing: UploadTiming,
    ) -> None:
        self.repo = repo
        self.uploads = uploads
        self.stores = stores
        self.data = data
        self.access = access
        self.quotas = quotas
        self.limits = limits
        self.format_rules = format_rules
        self.timing = timing

    # --- reading ----------------------------------------------------------------------------------------
    def max_size(self, ctx: RequestContext, image_id: str) -> int:
        """What the caller may still upload to the image: image_size_cap, or less when the quota leaves less."""
        image = self.access.load(ctx, image_id, "upload_image")
        headroom = self.quotas.headroom(image_id, image.owner)
        return self.limits.image_size_cap if headroom is None else min(headroom, self.limits.image_size_cap)

    def get(self, ctx: RequestContext, image_id: str, upload_id: str) -> ResumableUpload:
        image = self.access.load(ctx, image_id, "upload_image")
        return self._live(image, upload_id)

    def _live(self, image: Image, upload_id: str) -> ResumableUpload:
        try:
            upload = self.uploads.get(upload_id)
        except NotFound:
            raise NotFound(f"No upload {upload_id} of image {image.id}: it ended, expired or never was.") from None
        if upload.image_id != image.id or image.status != "saving" or upload.expires_at < now():
            raise NotFound(f"No upload {upload_id} of image {image.id}: it ended, expired or never was.")
        return upload

    # --- creation -----------------------------------------------------------------------------------------
    def create(
        self,
        ctx: RequestContext,
        image_id: str,
        length: int | None,
        concat: Concat | None,
        metadata: dict[str, str],
        store_name: str | None = None,
        repr_digest: str = "",
    ) -> ResumableUpload:
        """POST: a new upload (the whole image, a partial one, or the final joining of partial ones). repr_digest:
        the Repr-Digest of the whole image (RFC 9530), checked once every byte is in: a mismatch keeps nothing."""
        digests.parse(digests.REPR_DIGEST, repr_digest)  # a malformed one is refused before anything changes
        image = self.access.load(ctx, image_id, "upload_image")
        if not image.disk_format or not image.container_format:
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        kind = WHOLE if concat is None else FINAL if concat.final else PARTIAL
        if kind == FINAL:
            existing = self.uploads.of_image(image_id) if image.status == "saving" else []
            return self._create_final(ctx, image, concat.parts if concat else (), existing, metadata, repr_digest)
        assert length is not None
        if length > self.limits.image_size_cap:
            raise TooLarge(f"Image size {length} exceeds the allowed {self.limits.image_size_cap} bytes.")
        store = self.stores.writable(store_name)
        pieces = pieces_of(store)
        claim, existing, began = self._image_claim(ctx, image, kind, store.name)
        upload_id = str(uuid.uuid4())
        try:
            # Every partial upload of the image holds its own bytes: the reservation is their sum.
            reserved = length + sum(u.length for u in existing if u.kind == PARTIAL)
            self.quotas.ensure(image_id, image.owner, reserved)
            upload = ResumableUpload(
                id=upload_id,
                image_id=image_id,
                owner=image.owner,
                kind=kind,
                length=length,
                offset=0,
                store=store.name,
                handle=pieces.begin_pieces(image_id, upload_id),
                image_claim=claim,
                expires_at=now() + self.timing.expire_after,
                metadata=metadata,
                repr_digest=repr_digest,
            )
            self.uploads.add(upload)
        except BaseException as exc:
            if began:  # this request took the image out of queued: it gives it back
                self.data.give_back(image_id, claim, exc)
            raise
        if length == 0:  # nothing will come: the image is complete now
            return self._finish(ctx, image, upload, [upload])
        return upload

    def _image_claim(
        self, ctx: RequestContext, image: Image, kind: str, store_name: str
    ) -> tuple[str, list[ResumableUpload], bool]:
        """The image's upload claim, the uploads already sharing it, and whether this request took it: a new claim
        from queued, or the one the other partial uploads share (partial uploads of one image are created in
        parallel: the first takes the image out of queued, the others join it once its upload is recorded)."""
        for _ in range(JOIN_ATTEMPTS):
            if image.status == "queued":
                try:
                    return self.data.begin(ctx, image, store_name), [], True
                except Conflict:
                    if kind != PARTIAL:
                        raise
            else:
                existing = self.uploads.of_image(image.id)
                if kind == PARTIAL and existing and all(u.kind == PARTIAL and u.store == store_name for u in existing):
                    return existing[0].image_claim, existing, False
                if existing:
                    raise Conflict(
                        f"Image {image.id} already has an upload in progress: resume it (HEAD, PATCH) or end it "
                        "(DELETE)."
                    )
                if kind != PARTIAL:
                    raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
            time.sleep(JOIN_WAIT)
            image = self.access.load(ctx, image.id, "upload_image")
        raise Conflict(f"Image {image.id} is being uploaded otherwise (PUT or staging): it takes no tus upload now.")

    def _create_final(
        self,
        ctx: RequestContext,
        image: Image,
        part_ids: Sequence[str],
        existing: Sequence[ResumableUpload],
        metadata: dict[str, str],
        repr_digest: str,
    ) -> ResumableUpload:
        by_id = {u.id: u for u in existing}
        parts = [by_id.get(p) for p in part_ids]
        if not part_ids or any(p is None or p.kind != PARTIAL for p in parts):
            raise BadRequest("Upload-Concat final must name partial uploads of this image.")
        ready = [p for p in parts if p is not None]
        if not all(p.complete for p in ready):
            raise BadRequest("Every partial upload must be complete before the final one joins them.")
        final = ResumableUpload(
            id=str(uuid.uuid4()),
            image_id=image.id,
            owner=image.owner,
            kind=FINAL,
            length=sum(p.length for p in ready),
            offset=sum(p.length for p in ready),
            store=ready[0].store,
            handle="",
            image_claim=ready[0].image_claim,
            expires_at=now() + self.timing.expire_after,
            metadata=metadata,
            parts=tuple(part_ids),
            repr_digest=repr_digest,
        )
        if final.length > self.limits.image_size_cap:
            self._end(image.id, list(existing), final.image_claim, TooLarge("The joined parts exceed image_size_cap."))
            raise TooLarge(f"Image size {final.length} exceeds the allowed {self.limits.image_size_cap} bytes.")
        # Claim every part, so no PATCH and no sweep touches them while they are joined.
        claims = []
        try:
            for part in ready:
                claims.append((part.id, self.uploads.claim(part.id, part.offset, self.timing.stale_after)))
        except Conflict:
            for part_id, claim in claims:
                self.uploads.release(part_id, claim)
            raise
        self.uploads.add(final)
        return self._finish(ctx, image, final, ready, unused=[u for u in existing if u.id not in part_ids])

    # --- data -------------------------------------------------------------------------------------------
    def append(
        self,
        ctx: RequestContext,
        image_id: str,
        upload_id: str,
        offset: int,
        checksum: Checksum | None,
        chunks: Iterable[bytes],
        repr_digest: str = "",
    ) -> ResumableUpload:
        """PATCH: the bytes at `offset`; the upload with its new offset. The last byte publishes the image, once the
        whole matches the Repr-Digest given at creation and the one this PATCH carries (when it completes it)."""
        digests.parse(digests.REPR_DIGEST, repr_digest)
        image = self.access.load(ctx, image_id, "upload_image")
        upload = self._live(image, upload_id)
        if upload.kind == FINAL:
            raise Forbidden("A final concatenation takes no data of its own: PATCH its partial uploads.")
        if offset != upload.offset:
            raise Conflict(f"Upload-Offset {offset} is not the upload's offset {upload.offset}.")
        claim = self.uploads.claim(upload_id, offset, self.timing.stale_after)
        if upload.complete and upload.kind == WHOLE:  # all bytes were in, but the node publishing them stopped
            return self._finish(ctx, image, upload, [upload], patch_claim=claim, repr_digest=repr_digest)
        if upload.complete:  # a complete partial upload waits for its final one: nothing more to take
            self.uploads.release(upload_id, claim)
            return upload
        store = pieces_of(self.stores.get(upload.store))
        reader = ChunkReader(
            Heartbeat(chunks, self._beat(upload_id, claim), self.limits.heartbeat_every),
            upload.length - offset,
            checksum,
        )
        try:
            handle = store.append_piece(upload.handle, reader)
        except BaseException:
            self.uploads.release(upload_id, claim)
            raise
        grown = replace(upload, offset=offset + reader.size, handle=handle, expires_at=now() + self.timing.expire_after)
        try:
            self.uploads.advance(upload_id, claim, offset, grown.offset, handle, grown.expires_at, keep=grown.complete)
        except Conflict:
            store.drop_pieces(handle, keep=upload.handle)  # another request took the upload over: ours never counts
            raise
        if grown.complete and grown.kind == WHOLE:
            return self._finish(ctx, image, grown, [grown], patch_claim=claim, repr_digest=repr_digest)
        if grown.complete:
            self.uploads.release(upload_id, claim)
        return grown

    def _beat(self, upload_id: str, claim: str) -> Callable[[], None]:
        def beat() -> None:
            if not self.uploads.beat(upload_id, claim):
                raise Gone(f"Upload {upload_id} was ended or taken over while this request wrote to it.")

        return beat

    def _finish(
        self,
        ctx: RequestContext,
        image: Image,
        upload: ResumableUpload,
        sources: Sequence[ResumableUpload],
        patch_claim: str | None = None,
        unused: Sequence[ResumableUpload] = (),
        repr_digest: str = "",
    ) -> ResumableUpload:
        """Join the sources' pieces into the image's data, read it all back (hashes, format, signature) and
        publish it; on any failure the image goes back to queued and every piece of the upload is removed."""
        store = self.stores.get(upload.store)
        pieces = pieces_of(store)
        everything = [upload, *sources, *unused]
        url = None
        try:
            url = pieces.assemble(image.id, [s.handle for s in sources])
            beat = self._beat(upload.id, patch_claim) if patch_claim else (lambda: None)
            meter = HashingMeter(self.limits.image_size_cap, self.limits.hashing_algorithm)
            declared = [
                d for text in (upload.repr_digest, repr_digest) for d in digests.parse(digests.REPR_DIGEST, text)
            ]
            check = digests.digest_check(declared, self.limits.hashing_algorithm)
            reading = check.checked(Heartbeat(store.get(url), beat, self.limits.heartbeat_every))
            checked = self.data.verifier_guard(ctx, image)(reading)
            guard = FormatGuard(checked, image.disk_format or "", self.format_rules)
            for chunk in guard:
                meter.update(chunk)
            meter.check_expected(upload.length)
            stored = meter.result(url)
            check.verify_stored(stored.hash_algo, stored.hash_value)  # DigestMismatch: nothing is kept
            virtual_size = guard.verdict.virtual_size if guard.verdict else None
            self.data.publish(image.id, store, stored, virtual_size, upload.image_claim)
        except BaseException as exc:
            if url is not None and not isinstance(exc, Gone):
                with contextlib.suppress(GlimpseError):
                    store.delete(url)
            self._end(image.id, everything, upload.image_claim, exc)
            raise
        self.uploads.remove([u.id for u in everything])
        return replace(upload, offset=upload.length)

    # --- ending -------------------------------------------------------------------------------------------
    def terminate(self, ctx: RequestContext, image_id: str, upload_id: str) -> None:
        """DELETE: the image's upload ends, its data removed, the image queued again (every partial upload of
        a parallel one ends with it)."""
        image = self.access.load(ctx, image_id, "upload_image")
        upload = self._live(image, upload_id)
        claim = self.uploads.claim(upload_id, upload.offset, self.timing.stale_after)
        try:
            self._end(image_id, self.uploads.of_image(image_id), upload.image_claim)
        except BaseException:
            self.uploads.release(upload_id, claim)
            raise

    def _end(
        self, image_id: str, uploads: Sequence[ResumableUpload], image_claim: str, exc: BaseException | None = None
    ) -> None:
        self.data.give_back(image_id, image_claim, exc)  # only while the uploads still hold the image
        for upload in uploads:
            if upload.handle:
                try:
                    pieces_of(self.stores.get(upload.store)).drop_pieces(upload.handle)
                except GlimpseError as error:  # the sweep tries again: the row stays until its data is gone
                    log.warning("Upload %s of image %s: its pieces stay for now: %s", upload.id, image_id, error)
                    continue
            self.uploads.remove([upload.id])

    def sweep(self) -> int:
        """Uploads past their expiry, and those whose image was deleted or given back: data removed, reservation
        released, image queued again. Returns how many went."""
        swept = 0
        for upload in self.uploads.finished(now(), self.timing.stale_after):
            try:  # a PATCH that arrives now wins, or sees the upload gone
                self.uploads.claim(upload.id, upload.offset, self.timing.stale_after)
            except Conflict:
                continue
            self._end(upload.image_id, [upload], upload.image_claim)
            swept += 1
        return swept
