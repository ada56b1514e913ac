"""The metadata definitions catalog in SQL: namespaces and their objects, properties, tags and resource types.

Each method is one transaction. Visibility and policy are the domain's (domain/metadefs.py); this module
only stores, finds and orders. Definitions (an object's or a property's schema) travel as dicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glimpse.db.metadef_models import (
    EntryRow,
    MetadefAssociationRow,
    MetadefNamespaceRow,
    MetadefObjectRow,
    MetadefPropertyRow,
    MetadefResourceTypeRow,
    MetadefTagRow,
    read_definition,
    select_entries,
    write_definition,
)
from glimpse.db.session import SessionFactory
from glimpse.domain.metadef_entities import (
    NO_CONTENTS,
    Association,
    Entry,
    Kind,
    Namespace,
    NamespaceContents,
    NamespaceQuery,
    ResourceType,
)
from glimpse.errors import Conflict, NotFound

ROWS: dict[Kind, type[EntryRow]] = {
    "object": MetadefObjectRow,
    "property": MetadefPropertyRow,
    "tag": MetadefTagRow,
}


def _namespace(row: MetadefNamespaceRow) -> Namespace:
    return Namespace(
        row.namespace, row.display_name, row.description, row.visibility, row.protected, row.owner,
        row.created_at, row.updated_at,
    )  # fmt: skip


def _entry(row: EntryRow) -> Entry:
    return Entry(row.name, read_definition(row), row.created_at, row.updated_at)


class MetadefRepository:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    @contextmanager
    def _tx(self, duplicate: str = "") -> Iterator[Session]:
        try:
            with self.sessions.begin() as session:
                yield session
        except IntegrityError:
            raise Conflict(duplicate or "The change conflicts with an existing definition.") from None

    @staticmethod
    def _ns_row(session: Session, name: str) -> MetadefNamespaceRow:
        row = session.scalars(select(MetadefNamespaceRow).where(MetadefNamespaceRow.namespace == name)).first()
        if row is None:
            raise NotFound(f"Metadata definition namespace={name} was not found.")
        return row

    # namespaces

    def get_namespace(self, name: str) -> Namespace:
        with self.sessions.begin() as session:
            return _namespace(self._ns_row(session, name))

    def list_namespaces(self, q: NamespaceQuery) -> list[Namespace]:
        with self.sessions.begin() as session:
            stmt: Select[MetadefNamespaceRow] = select(MetadefNamespaceRow)
            if not q.all_visible:
                public = MetadefNamespaceRow.visibility == "public"
                stmt = stmt.where(or_(public, MetadefNamespaceRow.owner == q.owner) if q.owner else public)
            if q.visibility:
                stmt = stmt.where(MetadefNamespaceRow.visibility == q.visibility)
            if q.resource_types:
                ids = (
                    select(MetadefAssociationRow.namespace_id)
                    .join(MetadefResourceTypeRow, MetadefResourceTypeRow.id == MetadefAssociationRow.resource_type_id)
                    .where(MetadefResourceTypeRow.name.in_(q.resource_types))
                )
                stmt = stmt.where(MetadefNamespaceRow.id.in_(ids))
            # display_name may be NULL, which compares as nothing: it sorts as "" so that pages stay whole.
            column = getattr(MetadefNamespaceRow, q.sort_key)
            key = func.coalesce(column, "") if q.sort_key == "display_name" else column
            order = [key, MetadefNamespaceRow.created_at, MetadefNamespaceRow.id]
            descending = q.sort_dir == "desc"
            if q.marker is not None:
                marker = self._ns_row(session, q.marker)
                first = getattr(marker, q.sort_key)
                values = ["" if first is None else first, marker.created_at, marker.id]
                stmt = stmt.where(_after(order, values, descending))
            stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in order))
            if q.limit is not None:
                stmt = stmt.limit(q.limit)
            return [_namespace(r) for r in session.scalars(stmt)]

    def create_namespace(self, ns: Namespace, contents: NamespaceContents = NO_CONTENTS) -> Namespace:
        with self._tx(f"The metadata definition namespace={ns.namespace} already exists.") as session:
            if session.scalars(
                select(MetadefNamespaceRow.id).where(MetadefNamespaceRow.namespace == ns.namespace)
            ).first():
                raise Conflict(f"The metadata definition namespace={ns.namespace} already exists.")
            row = MetadefNamespaceRow(
                namespace=ns.namespace, display_name=ns.display_name, description=ns.description,
                visibility=ns.visibility, protected=ns.protected, owner=ns.owner,
            )  # fmt: skip
            session.add(row)
            session.flush()
            for assoc in contents.associations:
                self._associate(session, row, assoc)
            groups: tuple[tuple[Kind, Sequence[Entry]], ...] = (
                ("object", contents.objects), ("property", contents.properties), ("tag", contents.tags),
            )  # fmt: skip
            for kind, entries in groups:
                for entry in entries:
                    self._add_entry(session, row, kind, entry)
            session.flush()
            return _namespace(row)

    def update_namespace(self, name: str, ns: Namespace) -> Namespace:
        with self._tx(
            f"Invalid update. It would result in a duplicate metadata definition namespace with the same name of "
            f"{ns.namespace}"
        ) as session:
            row = self._ns_row(session, name)
            row.namespace, row.display_name, row.description = ns.namespace, ns.display_name, ns.description
            row.visibility, row.protected, row.owner = ns.visibility, ns.protected, ns.owner
            session.flush()
            return _namespace(row)

    def delete_namespace(self, name: str) -> None:
        with self.sessions.begin() as session:
            row = self._ns_row(session, name)
            for model in (*ROWS.values(), MetadefAssociationRow):
                session.execute(delete(model).where(model.namespace_id == row.id))
            session.delete(row)

    def delete_entries(self, name: str, kind: Kind) -> None:
        with self.sessions.begin() as session:
            row = self._ns_row(session, name)
            model = ROWS[kind]
            session.execute(delete(model).where(model.namespace_id == row.id))

    # objects, properties, tags

    def _add_entry(self, session: Session, ns: MetadefNamespaceRow, kind: Kind, entry: Entry) -> None:
        model = ROWS[kind]
        exists = select(model.id).where(model.namespace_id == ns.id, func.lower(model.name) == entry.name.lower())
        if kind == "tag" and session.scalars(exists).first() is not None:
            raise Conflict(_duplicate(kind, entry.name, ns.namespace))
        if kind != "tag" and session.scalars(exists.where(model.name == entry.name)).first() is not None:
            raise Conflict(_duplicate(kind, entry.name, ns.namespace))
        row = model(namespace_id=ns.id, name=entry.name)
        write_definition(row, entry.definition)
        session.add(row)
        session.flush()

    def list_entries(
        self, name: str, kind: Kind, *, marker: str | None = None, limit: int | None = None,
        sort_key: str = "created_at", sort_dir: str = "desc",
    ) -> list[Entry]:  # fmt: skip
        with self.sessions.begin() as session:
            ns = self._ns_row(session, name)
            model = ROWS[kind]
            stmt = select_entries(model).where(model.namespace_id == ns.id)
            order = [getattr(model, sort_key), model.created_at, model.id]
            descending = sort_dir == "desc"
            if marker is not None:
                m = self._entry_row(session, ns, kind, marker)
                stmt = stmt.where(_after(order, [getattr(m, c.key) for c in order], descending))
            stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in order))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_entry(r) for r in session.scalars(stmt)]

    @staticmethod
    def _entry_row(
        session: Session, ns: MetadefNamespaceRow, kind: Kind, entry: str
    ) -> MetadefObjectRow | MetadefPropertyRow | MetadefTagRow:
        model = ROWS[kind]
        query = select_entries(model).where(model.namespace_id == ns.id, model.name == entry)
        row = session.scalars(query).first()
        if row is None:
            raise NotFound(_missing(kind, entry, ns.namespace))
        return row

    def get_entry(self, name: str, kind: Kind, entry: str) -> Entry:
        with self.sessions.begin() as session:
            return _entry(self._entry_row(session, self._ns_row(session, name), kind, entry))

    def add_entry(self, name: str, kind: Kind, entry: Entry) -> Entry:
        with self._tx(_duplicate(kind, entry.name, name)) as session:
            ns = self._ns_row(session, name)
            self._add_entry(session, ns, kind, entry)
            return _entry(self._entry_row(session, ns, kind, entry.name))

    def replace_tags(self, name: str, tags: Sequence[str], append: bool) -> list[Entry]:
        with self._tx(_duplicate("tag", ", ".join(tags), name)) as session:
            ns = self._ns_row(session, name)
            if not append:
                session.execute(delete(MetadefTagRow).where(MetadefTagRow.namespace_id == ns.id))
            for tag in tags:
                self._add_entry(session, ns, "tag", Entry(tag))
            return [_entry(self._entry_row(session, ns, "tag", t)) for t in tags]

    def update_entry(self, name: str, kind: Kind, entry_name: str, entry: Entry) -> Entry:
        with self._tx(_duplicate(kind, entry.name, name)) as session:
            ns = self._ns_row(session, name)
            row = self._entry_row(session, ns, kind, entry_name)
            if entry.name != entry_name:
                model = ROWS[kind]
                same = func.lower(model.name) == entry.name.lower() if kind == "tag" else model.name == entry.name
                taken = select(model.id).where(model.namespace_id == ns.id, model.id != row.id, same)
                if session.scalars(taken).first() is not None:
                    raise Conflict(_duplicate(kind, entry.name, name))
            row.name = entry.name
            write_definition(row, entry.definition)
            session.flush()
            return _entry(row)

    def delete_entry(self, name: str, kind: Kind, entry: str) -> None:
        with self.sessions.begin() as session:
            session.delete(self._entry_row(session, self._ns_row(session, name), kind, entry))

    # resource types

    def resource_types(self) -> list[ResourceType]:
        with self.sessions.begin() as session:
            rows = session.scalars(select(MetadefResourceTypeRow).order_by(MetadefResourceTypeRow.name))
            return [ResourceType(r.name, r.created_at, r.updated_at) for r in rows]

    def associations(self, name: str) -> list[Association]:
        with self.sessions.begin() as session:
            return self._associations(session, self._ns_row(session, name))

    @staticmethod
    def _associations(session: Session, ns: MetadefNamespaceRow) -> list[Association]:
        rows = session.execute(
            select(MetadefResourceTypeRow.name, MetadefAssociationRow)
            .join(MetadefResourceTypeRow, MetadefResourceTypeRow.id == MetadefAssociationRow.resource_type_id)
            .where(MetadefAssociationRow.namespace_id == ns.id)
            .order_by(MetadefResourceTypeRow.name)
        )
        return [Association(n, a.prefix, a.properties_target, a.created_at, a.updated_at) for n, a in rows]

    def associations_of(self, names: Sequence[str]) -> dict[str, list[Association]]:
        with self.sessions.begin() as session:
            rows = session.scalars(select(MetadefNamespaceRow).where(MetadefNamespaceRow.namespace.in_(list(names))))
            return {r.namespace: self._associations(session, r) for r in rows}

    def _associate(self, session: Session, ns: MetadefNamespaceRow, assoc: Association) -> None:
        rtype = session.scalars(select(MetadefResourceTypeRow).where(MetadefResourceTypeRow.name == assoc.name)).first()
        if rtype is None:
            rtype = MetadefResourceTypeRow(name=assoc.name, protected=False)
            session.add(rtype)
            session.flush()
        taken = select(MetadefAssociationRow).where(
            MetadefAssociationRow.namespace_id == ns.id, MetadefAssociationRow.resource_type_id == rtype.id
        )
        if session.scalars(taken).first() is not None:
            raise Conflict(
                f"The metadata definition resource-type association of resource-type={assoc.name} to "
                f"namespace={ns.namespace} already exists."
            )
        session.add(
            MetadefAssociationRow(
                namespace_id=ns.id, resource_type_id=rtype.id, prefix=assoc.prefix,
                properties_target=assoc.properties_target,
            )
        )  # fmt: skip
        session.flush()

    def associate(self, name: str, assoc: Association) -> Association:
        with self._tx() as session:
            ns = self._ns_row(session, name)
            self._associate(session, ns, assoc)
            return next(a for a in self._associations(session, ns) if a.name == assoc.name)

    def dissociate(self, name: str, resource_type: str) -> None:
        with self.sessions.begin() as session:
            ns = self._ns_row(session, name)
            rtype = session.scalars(
                select(MetadefResourceTypeRow).where(MetadefResourceTypeRow.name == resource_type)
            ).first()
            if rtype is None:
                raise NotFound(f"The metadata definition resource-type with name={resource_type}, was not found.")
            found = session.get(MetadefAssociationRow, (rtype.id, ns.id))
            if found is None:
                raise NotFound(
                    f"The metadata definition resource-type association of resource-type={resource_type} to "
                    f"namespace={name}, was not found."
                )
            session.delete(found)

    # the catalog as a whole (glimpse db unload-metadefs)

    def delete_all(self, keep_resource_types: bool = False) -> int:
        with self.sessions.begin() as session:
            count = session.scalar(select(func.count()).select_from(MetadefNamespaceRow)) or 0
            for model in (MetadefAssociationRow, *ROWS.values()):
                session.execute(delete(model))
            session.execute(delete(MetadefNamespaceRow))
            if not keep_resource_types:
                session.execute(delete(MetadefResourceTypeRow))
            return count


def _after(order: list[Any], values: list[Any], descending: bool) -> ColumnElement[bool]:
    """Rows strictly after the marker in a multi-column order (keyset pagination)."""
    clauses = []
    for i, column in enumerate(order):
        earlier = [order[j] == values[j] for j in range(i)]
        clauses.append(and_(*earlier, column < values[i] if descending else column > values[i]))
    return or_(*clauses)


NOUNS: dict[Kind, str] = {"object": "object", "property": "property", "tag": "tag"}


def _duplicate(kind: Kind, name: str, namespace: str) -> str:
    if kind == "tag":
        return (
            f"A metadata tag with name={name} already exists in namespace={namespace}. "
            "(Please note that metadata tag names are case insensitive)."
        )
    return f"A metadata definition {NOUNS[kind]} with name={name} already exists in namespace={namespace}."


def _missing(kind: Kind, name: str, namespace: str) -> str:
    if kind == "tag":
        return f"The metadata definition tag with name={name} was not found in namespace={namespace}."
    return f"The metadata definition {NOUNS[kind]} with name={name} was not found in namespace={namespace}."
