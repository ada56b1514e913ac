"""The catalog to and from Glance's metadefs JSON files, as glance-manage db load_metadefs/export_metadefs.

load: each *.json file is one namespace with its resource type associations, properties, objects and tags.
A namespace already in the database is skipped, unless merge: then what is missing is added, prefer_new
also replaces what exists with the file's version, and overwrite drops the namespace and loads it anew.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from glimpse.db.metadef_models import (
    EntryRow,
    MetadefAssociationRow,
    MetadefNamespaceRow,
    MetadefObjectRow,
    MetadefPropertyRow,
    MetadefResourceTypeRow,
    MetadefTagRow,
    select_entries,
    write_definition,
)
from glimpse.db.metadefs import MetadefRepository
from glimpse.db.session import SessionFactory
from glimpse.errors import BadRequest

log = logging.getLogger(__name__)
DEFAULT_DIR = Path("/etc/glance/metadefs")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BadRequest(f"{path} is neither a metadefs JSON file nor a directory of them.")
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".json")


def _child(
    session: Session, model: type[EntryRow], ns_id: int, name: str, definition: dict[str, Any], prefer_new: bool
) -> None:
    query = select_entries(model).where(model.namespace_id == ns_id, model.name == name)
    row = session.scalars(query).first()
    if row is None:
        row = model(namespace_id=ns_id, name=name)
        write_definition(row, definition)
        session.add(row)
    elif prefer_new:
        write_definition(row, definition)
    session.flush()


def _load_one(session: Session, doc: dict[str, Any], merge: bool, prefer_new: bool, overwrite: bool) -> bool:
    name = doc.get("namespace")
    if not isinstance(name, str) or not name:
        raise ValueError("it names no namespace")
    row = session.scalars(select(MetadefNamespaceRow).where(MetadefNamespaceRow.namespace == name)).first()
    if row is not None and merge and overwrite:
        for model in (MetadefAssociationRow, MetadefObjectRow, MetadefPropertyRow, MetadefTagRow):
            session.execute(delete(model).where(model.namespace_id == row.id))
        session.delete(row)
        session.flush()
        row = None
    values = {
        "display_name": doc.get("display_name"),
        "description": doc.get("description"),
        "visibility": doc.get("visibility") or "private",
        "protected": bool(doc.get("protected")),
        "owner": doc.get("owner", "admin"),
    }
    if row is None:
        row = MetadefNamespaceRow(namespace=name, **values)
        session.add(row)
        session.flush()
    elif not merge:
        return False
    elif prefer_new:
        for key, value in values.items():
            setattr(row, key, value)
    for assoc in doc.get("resource_type_associations") or ():
        rtype = session.scalars(
            select(MetadefResourceTypeRow).where(MetadefResourceTypeRow.name == assoc["name"])
        ).first()
        if rtype is None:
            rtype = MetadefResourceTypeRow(name=assoc["name"], protected=True)
            session.add(rtype)
            session.flush()
        link = session.get(MetadefAssociationRow, (rtype.id, row.id))
        if link is None:
            session.add(
                MetadefAssociationRow(
                    resource_type_id=rtype.id, namespace_id=row.id, prefix=assoc.get("prefix"),
                    properties_target=assoc.get("properties_target"),
                )
            )  # fmt: skip
        elif prefer_new:
            link.prefix, link.properties_target = assoc.get("prefix"), assoc.get("properties_target")
        session.flush()
    for prop_name, definition in (doc.get("properties") or {}).items():
        _child(session, MetadefPropertyRow, row.id, prop_name, definition, prefer_new)
    for obj in doc.get("objects") or ():
        definition = {k: obj[k] for k in ("description", "required", "properties") if obj.get(k) is not None}
        _child(session, MetadefObjectRow, row.id, obj["name"], definition, prefer_new)
    for tag in doc.get("tags") or ():
        _child(session, MetadefTagRow, row.id, tag["name"], {}, prefer_new)
    return True


def load(
    sessions: SessionFactory, path: Path, *, merge: bool = False, prefer_new: bool = False,
    overwrite: bool = False,
) -> LoadReport:  # fmt: skip
    """Each file in its own transaction: a broken file is reported and the others still load."""
    if (prefer_new or overwrite) and not merge:
        raise BadRequest("--prefer-new and --overwrite only apply together with --merge.")
    if prefer_new and overwrite:
        raise BadRequest("--prefer-new and --overwrite exclude each other.")
    report = LoadReport()
    for file in _files(path):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("it is no JSON object")
            with sessions.begin() as session:
                done = _load_one(session, doc, merge, prefer_new, overwrite)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IntegrityError, DataError) as exc:
            log.error("Skipped %s: %s", file, exc)
            report.failed.append(file.name)
            continue
        (report.loaded if done else report.skipped).append(str(doc["namespace"]))
    return report


def unload(sessions: SessionFactory) -> int:
    """Every namespace and resource type goes; the number of namespaces removed."""
    return MetadefRepository(sessions).delete_all()


def export(sessions: SessionFactory, path: Path) -> list[Path]:
    """One file per namespace, named after its display name as glance-manage names them."""
    path.mkdir(parents=True, exist_ok=True)
    repo = MetadefRepository(sessions)
    with sessions.begin() as session:
        names = list(session.scalars(select(MetadefNamespaceRow.namespace).order_by(MetadefNamespaceRow.id)))
    written = []
    for name in names:
        ns = repo.get_namespace(name)
        objects = []
        for obj in repo.list_entries(name, "object", sort_key="name", sort_dir="asc"):
            doc: dict[str, Any] = {"name": obj.name, "description": obj.definition.get("description")}
            if obj.definition.get("required"):
                doc["required"] = obj.definition["required"]
            doc["properties"] = obj.definition.get("properties") or {}
            objects.append(doc)
        values = {
            "namespace": ns.namespace,
            "display_name": ns.display_name,
            "description": ns.description,
            "visibility": ns.visibility,
            "protected": ns.protected,
            "owner": ns.owner,
            "resource_type_associations": [
                {"name": a.name, "prefix": a.prefix, "properties_target": a.properties_target}
                for a in repo.associations(name)
            ],
            "properties": {p.name: p.definition for p in repo.list_entries(name, "property", sort_key="name",
                                                                             sort_dir="asc")},
            "objects": objects,
            "tags": [{"name": t.name} for t in repo.list_entries(name, "tag", sort_key="name", sort_dir="asc")],
        }  # fmt: skip
        stem = re.sub(r"[\W_]+", "", ns.display_name or "") or re.sub(r"[\W_]+", "", ns.namespace) or "namespace"
        target = path / f"{stem}.json"
        target.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


class MetadefFiles:
    """load, unload and export bound to one database, for `glimpse db load-metadefs` and its siblings."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def load(self, path: Path, *, merge: bool, prefer_new: bool, overwrite: bool) -> LoadReport:
        return load(self._sessions, path, merge=merge, prefer_new=prefer_new, overwrite=overwrite)

    def unload(self) -> int:
        return unload(self._sessions)

    def export(self, path: Path) -> list[Path]:
        return export(self._sessions, path)
