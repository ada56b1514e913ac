"""The metadata definitions catalog's use cases: who sees a namespace, who may change it, what a body may say.

Glance's rules: a namespace is visible to administrators, to its owner's project, and to everyone when it
is public. A caller denied a rule on a namespace it cannot see gets 404, one that can see it gets 403.
A protected namespace, and everything in it, cannot be deleted (403).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain import audit
from glimpse.domain.audit_entries import METADEF
from glimpse.domain.authorization import Authorizer
from glimpse.domain.inputs import check_text
from glimpse.domain.metadef_entities import (
    NAMESPACE_SORT_KEYS,
    Association,
    Entry,
    Kind,
    MetadefRepository,
    Namespace,
    NamespaceContents,
    NamespaceQuery,
    ResourceType,
)
from glimpse.domain.metadef_schema import validate, validate_property
from glimpse.errors import BadRequest, Conflict, Forbidden, NotFound

ENTRY_SORT_KEYS = ("created_at", "updated_at", "name", "id")
READ_ONLY = {
    "namespace": ("self", "schema", "created_at", "updated_at"),
    "object": ("self", "schema", "created_at", "updated_at"),
    "property": ("created_at", "updated_at"),
    "tag": ("created_at", "updated_at"),
    "resource_type": ("created_at", "updated_at"),
}
RULES: dict[Kind, tuple[str, str, str, str, str]] = {  # get one, list, add, modify, delete
    "object": ("get_metadef_object", "get_metadef_objects", "add_metadef_object", "modify_metadef_object",
               "delete_metadef_object"),
    "property": ("get_metadef_property", "get_metadef_properties", "add_metadef_property",
                 "modify_metadef_property", "remove_metadef_property"),
    "tag": ("get_metadef_tag", "get_metadef_tags", "add_metadef_tag", "modify_metadef_tag", "delete_metadef_tag"),
}  # fmt: skip
PROTECTED_ENTRY = {
    "object": "Metadata definition object {} is protected and cannot be deleted.",
    "property": "Metadata definition property {} is protected and cannot be deleted.",
    "tag": "Metadata definition tag {} is protected and cannot be deleted.",
}


@dataclass(frozen=True)
class NamespaceDetail:
    namespace: Namespace
    associations: list[Association]
    properties: list[Entry]
    objects: list[Entry]
    tags: list[Entry]


@dataclass(frozen=True)
class PageLimits:
    limit_default: int
    limit_max: int


def _body(body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("Body expected in request.")
    for key in READ_ONLY[kind]:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    return body


def _name(value: str, what: str) -> str:
    check_text(value, what)
    if len(value) > 80 or not value:
        raise BadRequest(f"{what} must be 1 to 80 characters long.")
    return value


# Definitions are stored as JSON text; MySQL's TEXT holds 64 KiB.
MAX_DEFINITION_BYTES = 65535


def _sized(definition: dict[str, Any], what: str) -> dict[str, Any]:
    if len(json.dumps(definition).encode()) > MAX_DEFINITION_BYTES:
        raise BadRequest(f"The definition of {what} is longer than {MAX_DEFINITION_BYTES} bytes.")
    return definition


def _entry(kind: Kind, body: Any) -> Entry:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise BadRequest(f"Each {kind} needs a name.")
    definition = _sized({k: v for k, v in body.items() if k != "name"}, body["name"])
    if kind == "object":
        for prop in (body.get("properties") or {}).values():
            validate_property(prop)
    return Entry(_name(body["name"], f"The {kind} name"), definition)


class MetadefService:
    def __init__(self, repo: MetadefRepository, policy: Authorizer, page: PageLimits) -> None:
        self.repo = repo
        self.policy = policy
        self.page = page

    # policy and visibility

    @staticmethod
    def visible(ctx: RequestContext, ns: Namespace) -> bool:
        return ctx.is_admin or ns.owner is None or ns.visibility == "public" or ctx.owns(ns.owner)

    def _enforce(self, ctx: RequestContext, rule: str, ns: Namespace | None = None) -> None:
        target: Mapping[str, Any] = (
            {"project_id": ns.owner, "visibility": ns.visibility} if ns else {"project_id": ctx.project_id}
        )
        if self.policy.check(ctx, rule, target):
            return
        if ns is not None and (rule == "get_metadef_namespace" or not self.policy.check(
            ctx, "get_metadef_namespace", target
        )):  # fmt: skip
            raise NotFound("The resource could not be found.")
        raise Forbidden(f"You are not authorized to complete {rule} action.")

    def _load(self, ctx: RequestContext, name: str, rule: str) -> Namespace:
        check_text(name, "The namespace")
        try:
            ns = self.repo.get_namespace(name)
        except NotFound:
            raise NotFound(f"Namespace {name} not found") from None
        if not self.visible(ctx, ns):
            raise NotFound(f"Namespace {name} not found")
        self._enforce(ctx, rule, ns)
        return ns

    # namespaces

    def list_namespaces(self, ctx: RequestContext, params: Mapping[str, str]) -> tuple[list[Namespace], bool]:
        """The page of visible namespaces, and whether it is full (so a next link is due)."""
        self._enforce(ctx, "get_metadef_namespaces")
        self._enforce(ctx, "list_metadef_resource_types")
        limit = _limit(params.get("limit"), self.page)
        sort_dir = params.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {sort_dir}")
        sort_key = params.get("sort_key", "created_at")
        if sort_key not in NAMESPACE_SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {sort_key}")
        visibility = params.get("visibility")
        if visibility and visibility not in ("public", "private"):
            raise BadRequest(f"Invalid visibility value: {visibility}")
        marker = params.get("marker")
        if marker is not None:
            self._load(ctx, marker, "get_metadef_namespace")
        rtypes = tuple(r for r in params.get("resource_types", "").split(",") if r)
        query = NamespaceQuery(
            owner=ctx.project_id, all_visible=ctx.is_admin, visibility=visibility or None, resource_types=rtypes,
            marker=marker, limit=limit, sort_key=sort_key, sort_dir=sort_dir,
        )  # fmt: skip
        found = self.repo.list_namespaces(query)
        shown = [ns for ns in found if self.policy.check(ctx, "get_metadef_namespace", _target(ns))]
        return shown, bool(shown) and len(shown) == limit

    def associations_of(self, names: list[str]) -> dict[str, list[Association]]:
        return self.repo.associations_of(names)

    def create_namespace(self, ctx: RequestContext, body: Any) -> NamespaceDetail:
        body = _body(body, "namespace")
        validate(body, "namespace")
        self._enforce(ctx, "add_metadef_namespace")
        guards = (("resource_type_associations", "add_metadef_resource_type_association"),
                  ("objects", "add_metadef_object"), ("properties", "add_metadef_property"),
                  ("tags", "add_metadef_tag"))  # fmt: skip
        for key, rule in guards:
            if body.get(key):
                self._enforce(ctx, rule)
        ns = self._namespace(ctx, body)
        rtypes = body.get("resource_type_associations") or ()
        if any(not isinstance(a.get("name"), str) for a in rtypes):
            raise BadRequest("Each resource type association needs a name.")
        associations = [Association(a["name"], a.get("prefix"), a.get("properties_target")) for a in rtypes]
        objects = [_entry("object", o) for o in body.get("objects") or ()]
        defined = (body.get("properties") or {}).items()
        properties = [Entry(_name(n, "The property name"), _sized(p, n)) for n, p in defined]
        tags = [Entry(_name(t["name"], "The tag name")) for t in body.get("tags") or () if "name" in t]
        for a in associations:
            _name(a.name, "The resource type name")
        contents = NamespaceContents(associations, objects, properties, tags)
        with audit.change(
            ctx, "metadef.namespace.create", METADEF, ns.namespace, ns.owner, **_shown_namespace(None, ns)
        ):
            created = self.repo.create_namespace(ns, contents)
        return NamespaceDetail(created, associations, properties, objects, tags)

    @staticmethod
    def _namespace(ctx: RequestContext, body: dict[str, Any]) -> Namespace:
        return Namespace(
            namespace=_name(body["namespace"], "The namespace"),
            display_name=body.get("display_name"),
            description=body.get("description"),
            visibility=body.get("visibility") or "private",
            protected=bool(body.get("protected") or False),
            owner=body.get("owner") or ctx.project_id,
        )

    def show_namespace(self, ctx: RequestContext, name: str, resource_type: str | None = None) -> NamespaceDetail:
        ns = self._load(ctx, name, "get_metadef_namespace")
        for rule in ("list_metadef_resource_types", "get_metadef_objects", "get_metadef_properties",
                     "get_metadef_tags"):  # fmt: skip
            self._enforce(ctx, rule, ns)
        associations = self.repo.associations(name)
        properties = self.repo.list_entries(name, "property", sort_key="name", sort_dir="asc")
        objects = self.repo.list_entries(name, "object", sort_key="name", sort_dir="asc")
        tags = self.repo.list_entries(name, "tag", sort_key="name", sort_dir="asc")
        prefix = next((a.prefix for a in associations if resource_type and a.name == resource_type), None)
        if prefix:
            properties = [Entry(prefix + p.name, p.definition, p.created_at, p.updated_at) for p in properties]
            objects = [_prefixed(o, prefix) for o in objects]
        return NamespaceDetail(ns, associations, properties, objects, tags)

    def update_namespace(self, ctx: RequestContext, name: str, body: Any) -> Namespace:
        old = self._load(ctx, name, "modify_metadef_namespace")
        body = _body(body, "namespace")
        validate(body, "namespace")
        new = self._namespace(ctx, body)
        with audit.change(ctx, "metadef.namespace.update", METADEF, name, old.owner, **_shown_namespace(old, new)):
            return self.repo.update_namespace(name, new)

    def delete_namespace(self, ctx: RequestContext, name: str) -> None:
        ns = self._load(ctx, name, "delete_metadef_namespace")
        _unprotected(ns)
        with audit.change(ctx, "metadef.namespace.delete", METADEF, name, ns.owner, **_shown_namespace(ns, None)):
            self.repo.delete_namespace(name)

    def delete_contents(self, ctx: RequestContext, name: str, kind: Kind) -> None:
        ns = self._load(ctx, name, "delete_metadef_namespace")
        if kind == "tag":
            self._enforce(ctx, "delete_metadef_tags", ns)
        _unprotected(ns)
        with audit.change(ctx, f"metadef.{kind}.delete_all", METADEF, name, ns.owner):
            self.repo.delete_entries(name, kind)

    # objects, properties, tags

    def list_entries(self, ctx: RequestContext, name: str, kind: Kind, params: Mapping[str, str]) -> list[Entry]:
        self._load(ctx, name, RULES[kind][1])
        sort_dir = params.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {sort_dir}")
        sort_key = params.get("sort_key", "created_at")
        if sort_key not in ENTRY_SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {sort_key}")
        limit = _limit(params.get("limit"), self.page) if params.get("limit") else None
        marker = params.get("marker")
        if kind == "property":
            return self.repo.list_entries(name, kind, sort_key="name", sort_dir="asc")
        return self.repo.list_entries(name, kind, marker=marker, limit=limit, sort_key=sort_key, sort_dir=sort_dir)

    def get_entry(
        self, ctx: RequestContext, name: str, kind: Kind, entry: str, resource_type: str | None = None
    ) -> Entry:
        ns = self._load(ctx, name, RULES[kind][0])
        check_text(entry, f"The {kind} name")
        if resource_type:
            self._enforce(ctx, "get_metadef_resource_type", ns)
            assoc = next((a for a in self.repo.associations(name) if a.name == resource_type), None)
            if assoc is None:
                raise NotFound(
                    f"The metadata definition resource-type association of resource-type={resource_type} to "
                    f"namespace={name}, was not found."
                )
            if not (assoc.prefix and entry.startswith(assoc.prefix)):
                raise NotFound(
                    f"Property {entry} does not start with the expected resource type association prefix of "
                    f"'{assoc.prefix}'."
                )
            entry = entry[len(assoc.prefix) :]
        return self.repo.get_entry(name, kind, entry)

    def add_entry(self, ctx: RequestContext, name: str, kind: Kind, body: Any) -> Entry:
        ns = self._load(ctx, name, RULES[kind][2])
        body = _body(body, kind)
        validate(body, kind)
        added = _entry(kind, body)
        with audit.change(
            ctx, f"metadef.{kind}.create", METADEF, f"{name}/{added.name}", ns.owner, name=[None, added.name]
        ):
            return self.repo.add_entry(name, kind, added)

    def add_tag(self, ctx: RequestContext, name: str, tag: str) -> Entry:
        ns = self._load(ctx, name, "add_metadef_tag")
        validate({"name": tag}, "tag")
        with audit.change(ctx, "metadef.tag.create", METADEF, f"{name}/{tag}", ns.owner, name=[None, tag]):
            return self.repo.add_entry(name, "tag", Entry(_name(tag, "The tag name")))

    def add_tags(self, ctx: RequestContext, name: str, body: Any, append: bool) -> list[Entry]:
        ns = self._load(ctx, name, "add_metadef_tags")
        body = _body(body, "tag")
        validate(body, "tags")
        tags = [_name(t["name"], "The tag name") for t in body.get("tags") or () if "name" in t]
        lowered = [t.lower() for t in tags]
        if len(set(lowered)) != len(lowered):
            dupe = next(t for t in tags if lowered.count(t.lower()) > 1)
            raise_duplicate_tag(dupe, name)
        with audit.change(ctx, "metadef.tags.create" if append else "metadef.tags.replace", METADEF, name, ns.owner,
                          tags=[None, tags]):  # fmt: skip
            return self.repo.replace_tags(name, tags, append)

    def update_entry(self, ctx: RequestContext, name: str, kind: Kind, entry: str, body: Any) -> Entry:
        ns = self._load(ctx, name, RULES[kind][3])
        check_text(entry, f"The {kind} name")
        body = _body(body, kind)
        validate(body, kind)
        updated = _entry(kind, body)
        with audit.change(
            ctx, f"metadef.{kind}.update", METADEF, f"{name}/{entry}", ns.owner, name=[entry, updated.name]
        ):
            return self.repo.update_entry(name, kind, entry, updated)

    def delete_entry(self, ctx: RequestContext, name: str, kind: Kind, entry: str) -> None:
        ns = self._load(ctx, name, RULES[kind][4])
        check_text(entry, f"The {kind} name")
        if ns.protected:
            self.repo.get_entry(name, kind, entry)  # 404 first for one that does not exist
            raise Forbidden(PROTECTED_ENTRY[kind].format(entry))
        with audit.change(ctx, f"metadef.{kind}.delete", METADEF, f"{name}/{entry}", ns.owner, name=[entry, None]):
            self.repo.delete_entry(name, kind, entry)

    # resource types

    def resource_types(self, ctx: RequestContext) -> list[ResourceType]:
        self._enforce(ctx, "list_metadef_resource_types")
        return self.repo.resource_types()

    def associations(self, ctx: RequestContext, name: str) -> list[Association]:
        self._load(ctx, name, "list_metadef_resource_types")
        return self.repo.associations(name)

    def associate(self, ctx: RequestContext, name: str, body: Any) -> Association:
        ns = self._load(ctx, name, "add_metadef_resource_type_association")
        body = _body(body, "resource_type")
        validate(body, "resource_type")
        assoc = Association(_name(body["name"], "The resource type name"), body.get("prefix"),
                            body.get("properties_target"))  # fmt: skip
        with audit.change(ctx, "metadef.resource_type.associate", METADEF, name, ns.owner,
                          resource_type=[None, assoc.name]):  # fmt: skip
            return self.repo.associate(name, assoc)

    def dissociate(self, ctx: RequestContext, name: str, resource_type: str) -> None:
        ns = self._load(ctx, name, "remove_metadef_resource_type_association")
        check_text(resource_type, "The resource type name")
        if ns.protected:
            raise Forbidden(
                f"Metadata definition resource-type-association {resource_type} is protected and cannot be deleted."
            )
        with audit.change(ctx, "metadef.resource_type.dissociate", METADEF, name, ns.owner,
                          resource_type=[resource_type, None]):  # fmt: skip
            self.repo.dissociate(name, resource_type)


def raise_duplicate_tag(tag: str, namespace: str) -> None:
    raise Conflict(
        f"A metadata tag with name={tag} already exists in namespace={namespace}. "
        "(Please note that metadata tag names are case insensitive)."
    )


def _target(ns: Namespace) -> dict[str, Any]:
    return {"project_id": ns.owner, "visibility": ns.visibility}


def _unprotected(ns: Namespace) -> None:
    if ns.protected:
        raise Forbidden(f"Metadata definition namespace {ns.namespace} is protected and cannot be deleted.")


def _prefixed(obj: Entry, prefix: str) -> Entry:
    definition = dict(obj.definition)
    definition["properties"] = {prefix + k: v for k, v in (definition.get("properties") or {}).items()}
    if definition.get("required"):
        definition["required"] = [prefix + r for r in definition["required"]]
    return Entry(obj.name, definition, obj.created_at, obj.updated_at)


def _limit(raw: str | None, page: PageLimits) -> int:
    if raw is None:
        return min(page.limit_default, page.limit_max)
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise BadRequest("limit param must be positive")
    return min(limit, page.limit_max)


def _shown_namespace(old: Namespace | None, new: Namespace | None) -> dict[str, list[Any]]:
    """A namespace's changed fields for the audit log."""
    fields = ("namespace", "display_name", "description", "visibility", "protected", "owner")
    pairs = {f: [getattr(old, f, None), getattr(new, f, None)] for f in fields}
    return {f: pair for f, pair in pairs.items() if pair[0] != pair[1]}
