"""The JSON documents of the metadefs API, shaped as Glance's."""

from __future__ import annotations

from typing import Any

from glimpse.api.v2.views import isotime
from glimpse.domain.metadef_entities import Association, Entry, Namespace, ResourceType
from glimpse.domain.metadefs import NamespaceDetail

NS_PATH = "/v2/metadefs/namespaces"


def _stamps(doc: dict[str, Any], created: Any, updated: Any) -> dict[str, Any]:
    if created is not None:
        doc["created_at"] = isotime(created)
    if updated is not None:
        doc["updated_at"] = isotime(updated)
    return doc


def namespace_view(ns: Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"namespace": ns.namespace}
    for key in ("display_name", "description"):
        if getattr(ns, key) is not None:
            doc[key] = getattr(ns, key)
    doc.update(visibility=ns.visibility, protected=ns.protected)
    if ns.owner is not None:
        doc["owner"] = ns.owner
    _stamps(doc, ns.created_at, ns.updated_at)
    doc["self"] = f"{NS_PATH}/{ns.namespace}"
    doc["schema"] = "/v2/schemas/metadefs/namespace"
    return doc


def association_view(a: Association) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": a.name}
    if a.prefix is not None:
        doc["prefix"] = a.prefix
    if a.properties_target is not None:
        doc["properties_target"] = a.properties_target
    return _stamps(doc, a.created_at, a.updated_at)


def resource_type_view(r: ResourceType) -> dict[str, Any]:
    return _stamps({"name": r.name}, r.created_at, r.updated_at)


def object_view(namespace: str, obj: Entry) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": obj.name}
    for key in ("description", "required"):
        if obj.definition.get(key) is not None:
            doc[key] = obj.definition[key]
    doc["properties"] = obj.definition.get("properties") or {}
    _stamps(doc, obj.created_at, obj.updated_at)
    doc["self"] = f"{NS_PATH}/{namespace}/objects/{obj.name}"
    doc["schema"] = "/v2/schemas/metadefs/object"
    return doc


def property_view(prop: Entry) -> dict[str, Any]:
    return {"name": prop.name, **{k: v for k, v in prop.definition.items() if v is not None}}


def properties_map(props: list[Entry]) -> dict[str, Any]:
    return {p.name: {k: v for k, v in p.definition.items() if v is not None} for p in props}


def tag_view(tag: Entry) -> dict[str, Any]:
    return _stamps({"name": tag.name}, tag.created_at, tag.updated_at)


def detail_view(detail: NamespaceDetail) -> dict[str, Any]:
    doc = namespace_view(detail.namespace)
    name = detail.namespace.namespace
    if detail.associations:
        doc["resource_type_associations"] = [association_view(a) for a in detail.associations]
    if detail.properties:
        doc["properties"] = properties_map(detail.properties)
    if detail.objects:
        doc["objects"] = [object_view(name, o) for o in detail.objects]
    if detail.tags:
        doc["tags"] = [{"name": t.name} for t in detail.tags]
    return doc
