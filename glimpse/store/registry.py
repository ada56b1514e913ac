"""The configured stores by name, with the default one and lookup by location URL."""

from __future__ import annotations

from glimpse.errors import BadRequest, StoreError
from glimpse.store.base import Store


class StoreRegistry:
    def __init__(self, stores: dict[str, Store], default: str) -> None:
        if default not in stores:
            raise StoreError(f"The default store '{default}' is not configured.")
        self.stores = stores
        self.default = default

    def writable(self, name: str | None) -> Store:
        store = self.stores.get(name or self.default)
        if store is None:
            raise BadRequest(f"Store {name} is not available on this service. Valid stores: {', '.join(self.stores)}.")
        if store.read_only:
            raise BadRequest(f"Store {name} is read-only.")
        return store

    def for_location(self, url: str, metadata: dict[str, str]) -> Store:
        named = self.stores.get(metadata.get("store", ""))
        if named is not None:
            return named
        scheme = url.split("://", 1)[0]
        for store in self.stores.values():
            if store.type == scheme:
                return store
        raise StoreError(f"No configured store can read location {url}.")
