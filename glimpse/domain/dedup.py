"""Deduplicated storage as the use cases apply it: identical data (same size and sha512) is held once per store.

The counting lives in the database (db/shared_data.py), in the very transactions that publish or forget a copy.
This module holds what the use cases do around them: pin the data an upload will not write (its client declared
the size and a sha-512 that the store holds already), receive such an upload without writing it, and remove the
copies publishing made redundant, or the shared data whose last reference went.

A project learns nothing of other projects' data from it: an upload is answered the same whether its data was
shared or not, and each image counts its full size in its project's quota.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from glimpse.domain.digests import Digest, declared_hexdigest
from glimpse.domain.entities import DataKey, Image, Location, StoredData, StoreUsage
from glimpse.domain.image_locations import purge
from glimpse.domain.ports import SharedDataRepository, Store, StoreRegistry
from glimpse.store.base import HashingMeter

SHARED_HASH = "sha512"  # the key's hash: Glance's default os_hash_algo, so published images carry it already


class Dedup:
    def __init__(self, shared: SharedDataRepository | None, stores: StoreRegistry, enabled: bool, hash_algo: str):
        """shared: None when the service runs without it (every copy is then its image's own)."""
        self.shared = shared
        self.stores = stores
        self.enabled = enabled and shared is not None and hash_algo == SHARED_HASH

    def applies(self, store: Store) -> bool:
        """Whether new copies in `store` are shared (a read-only store's data is somebody else's)."""
        return self.enabled and not store.read_only

    def pin(self, image: Image, claim: str, store: Store, size: int | None, declared: Sequence[Digest]) -> str | None:
        """The URL of the data the upload `claim` declared (size and sha-512) when `store` holds it: held for the
        upload, which then writes nothing. None when the upload must write its data.

        Only data the image's project can see already (its own images', public and community ones') is taken
        this way: skipping the write makes the upload quicker, and that must not tell a project what others hold.
        Other twins are found when the written data is published, which takes the same time either way."""
        sha512 = declared_hexdigest(declared, "sha-512")
        if self.shared is None or not self.applies(store) or size is None or sha512 is None:
            return None
        return self.shared.pin(image.id, claim, DataKey(store.name, size, sha512), image.owner)

    def release(self, image_id: str, claim: str | None = None) -> None:
        """The upload `claim` (every upload of the image no longer live, when None) gave up its pin: the data
        goes too when nothing else uses it."""
        if self.shared is None:
            return
        for unused in self.shared.unpin(image_id, claim):
            purge(self.stores, unused)

    def stale_pins(self) -> list[str]:
        """Images whose upload died holding a pin (`glimpse store gc` releases them)."""
        return [] if self.shared is None else self.shared.stale_pins()

    def usage(self) -> list[StoreUsage]:
        return [] if self.shared is None else self.shared.usage()

    def discard(self, redundant: Iterable[Location]) -> None:
        """Copies just written whose twins were found at publishing: the image now points at the twin."""
        for location in redundant:
            purge(self.stores, location)

    def discard_own(self, store: Store, url: str) -> None:
        """Remove a copy this worker wrote and did not record, unless it landed on shared data's name (an image
        whose shared copy another image kept, copied back to that store)."""
        if self.shared is None or not self.shared.is_shared(url):
            store.delete(url)


def received(
    chunks: Iterable[bytes], url: str, *, max_size: int, expected_size: int | None, hash_algo: str
) -> StoredData:
    """An upload whose data the store holds already: every byte is received, metered and hashed as a write would
    be (size cap, expected size, checksums), and nothing is written. The caller verifies the digests before it
    links the image to `url`."""
    meter = HashingMeter(max_size, hash_algo)
    for chunk in chunks:
        meter.update(chunk)
    meter.check_expected(expected_size)
    return meter.result(url)
