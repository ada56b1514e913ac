"""The metadata definitions catalog's records, and the repository Protocol db/metadefs.py implements: plain data
and an interface the domain's rules and db's tables share."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Kind = Literal["object", "property", "tag"]
NAMESPACE_SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "id")


@dataclass(frozen=True)
class Namespace:
    namespace: str
    display_name: str | None = None
    description: str | None = None
    visibility: str = "private"
    protected: bool = False
    owner: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Entry:
    """An object, a property or a tag: its name and definition (empty for a tag)."""

    name: str
    definition: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Association:
    name: str
    prefix: str | None = None
    properties_target: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ResourceType:
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class NamespaceContents:
    """What a namespace holds, created with it in one transaction."""

    associations: Sequence[Association] = ()
    objects: Sequence[Entry] = ()
    properties: Sequence[Entry] = ()
    tags: Sequence[Entry] = ()


@dataclass(frozen=True)
class NamespaceQuery:
    owner: str | None = None  # the caller's project: its private namespaces and every public one
    all_visible: bool = False  # an administrator sees every namespace
    visibility: str | None = None
    resource_types: tuple[str, ...] = ()
    marker: str | None = None
    limit: int | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"


NO_CONTENTS = NamespaceContents()  # a namespace created empty


class MetadefRepository(Protocol):
    """The metadata definitions catalog: namespaces, their objects, properties, tags and resource types."""

    def get_namespace(self, name: str) -> Namespace: ...

    def list_namespaces(self, q: NamespaceQuery) -> builtins.list[Namespace]: ...

    def create_namespace(self, ns: Namespace, contents: NamespaceContents = ...) -> Namespace: ...

    def update_namespace(self, name: str, ns: Namespace) -> Namespace: ...

    def delete_namespace(self, name: str) -> None: ...

    def delete_entries(self, name: str, kind: Kind) -> None: ...

    def list_entries(
        self,
        name: str,
        kind: Kind,
        *,
        marker: str | None = None,
        limit: int | None = None,
        sort_key: str = "created_at",
        sort_dir: str = "desc",
    ) -> builtins.list[Entry]: ...

    def get_entry(self, name: str, kind: Kind, entry: str) -> Entry: ...

    def add_entry(self, name: str, kind: Kind, entry: Entry) -> Entry: ...

    def replace_tags(self, name: str, tags: Sequence[str], append: bool) -> builtins.list[Entry]: ...

    def update_entry(self, name: str, kind: Kind, entry_name: str, entry: Entry) -> Entry: ...

    def delete_entry(self, name: str, kind: Kind, entry: str) -> None: ...

    def resource_types(self) -> builtins.list[ResourceType]: ...

    def associations(self, name: str) -> builtins.list[Association]: ...

    def associations_of(self, names: Sequence[str]) -> dict[str, builtins.list[Association]]: ...

    def associate(self, name: str, assoc: Association) -> Association: ...

    def dissociate(self, name: str, resource_type: str) -> None: ...

    def delete_all(self, keep_resource_types: bool = False) -> int: ...
