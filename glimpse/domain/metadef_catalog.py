"""The catalog as an editor sees it: the properties the metadefs namespaces define for one resource type
(OS::Glance::Image for images), with their prefixes applied, and whether a value suits its definition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.metadefs import MetadefService
from glimpse.errors import BadRequest

IMAGE = "OS::Glance::Image"


@dataclass(frozen=True)
class CatalogProperty:
    key: str  # as set on the resource: the association's prefix and the property's name
    title: str
    description: str
    type: str
    choices: tuple[str, ...]  # an enum (or "true"/"false" for a boolean): the only acceptable values
    group: str  # the object it belongs to, or "" for the namespace's own properties


@dataclass(frozen=True)
class CatalogNamespace:
    namespace: str
    display_name: str
    description: str
    properties: tuple[CatalogProperty, ...]


def catalog_property(key: str, definition: dict[str, Any], group: str) -> CatalogProperty:
    kind = str(definition.get("type") or "string")
    enum = definition.get("enum") or (definition.get("items") or {}).get("enum") or ()
    choices = ("true", "false") if kind == "boolean" else tuple(str(v) for v in enum)
    return CatalogProperty(
        key, str(definition.get("title") or key), str(definition.get("description") or ""), kind, choices, group
    )


def catalog(
    service: MetadefService, ctx: RequestContext, resource_type: str = IMAGE, only: str | None = None
) -> list[CatalogNamespace]:
    """The namespaces associated with resource_type that the caller may read (or just `only`)."""
    if only is not None:
        names = [only]
    else:
        params = {"resource_types": resource_type, "limit": str(service.page.limit_max), "sort_key": "namespace",
                  "sort_dir": "asc"}  # fmt: skip
        names = [ns.namespace for ns in service.list_namespaces(ctx, params)[0]]
    found = []
    for name in names:
        detail = service.show_namespace(ctx, name, resource_type)
        if resource_type not in (a.name for a in detail.associations):
            continue
        props = [catalog_property(p.name, p.definition, "") for p in detail.properties]
        for obj in detail.objects:
            props += [catalog_property(k, v, obj.name) for k, v in (obj.definition.get("properties") or {}).items()]
        ns = detail.namespace
        found.append(CatalogNamespace(ns.namespace, ns.display_name or ns.namespace, ns.description or "",
                                      tuple(props)))  # fmt: skip
    return found


def check_value(prop: CatalogProperty, value: str) -> str:
    """The value to store, or BadRequest naming the property's title when its definition refuses it."""
    if prop.choices and prop.type != "array" and value not in prop.choices:
        raise BadRequest(f"{prop.title} must be one of: {', '.join(prop.choices)}.")
    if prop.type in ("integer", "number"):
        try:
            int(value) if prop.type == "integer" else float(value)
        except ValueError:
            raise BadRequest(f"{prop.title} must be a{'n integer' if prop.type == 'integer' else ' number'}.") from None
    return value
