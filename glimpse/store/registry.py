"""The configured stores by id, with the default one, their weights, and lookup by location URL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from glimpse.domain.entities import StoreInfo
from glimpse.errors import BadRequest, StoreError
from glimpse.logsafe import redact_url
from glimpse.store.base import Store

__all__ = ["StoreInfo", "StoreRegistry"]


class _HasMetadata(Protocol):
    url: str
    metadata: dict[str, str]


L = TypeVar("L", bound=_HasMetadata)


class StoreRegistry:
    def __init__(
        self,
        stores: dict[str, Store],
        default: str,
        *,
        multi: bool = False,
        info: dict[str, StoreInfo] | None = None,
    ) -> None:
        if default not in stores:
            raise StoreError(f"The default store '{default}' is not configured.")
        self.stores = stores
        self.default = default
        # Multi-store mode (enabled_backends): store ids are shown to users and chosen by them.
        self.multi = multi
        self.info = {name: (info or {}).get(name, StoreInfo()) for name in stores}

    def get(self, name: str) -> Store:
        store = self.stores.get(name)
        if store is None:
            raise BadRequest(f"Store {name} is not available on this service. Valid stores: {', '.join(self.stores)}.")
        return store

    def writable(self, name: str | None) -> Store:
        store = self.get(name or self.default)
        if store.read_only:
            raise BadRequest(f"Store {store.name} is read-only.")
        return store

    def writable_ids(self) -> list[str]:
        return [name for name, store in self.stores.items() if not store.read_only]

    def store_id(self, url: str, metadata: dict[str, str]) -> str | None:
        """The id of the store holding a location, or None when no configured store reads it."""
        named = metadata.get("store", "")
        if named in self.stores:
            return named
        scheme = url.split("://", 1)[0]
        for name, store in self.stores.items():
            if scheme in store.schemes:
                return name
        return None

    def for_location(self, url: str, metadata: dict[str, str]) -> Store:
        name = self.store_id(url, metadata)
        if name is None:
            raise StoreError(f"No configured store can read location {redact_url(url)}.")
        return self.stores[name]

    def by_weight(self, locations: Sequence[L]) -> list[L]:
        """Locations in the order to read them: heaviest store first, then as recorded (Glance's weight)."""

        def weight(location: L) -> int:
            name = self.store_id(location.url, location.metadata)
            return self.info[name].weight if name is not None else -(2**31)

        return sorted(locations, key=weight, reverse=True)
