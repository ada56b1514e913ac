"""The metadata definitions catalog's records: plain data the domain's rules and db's tables share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

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
