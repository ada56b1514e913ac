"""The domain's ports (glimpse/domain/ports.py) are met by db/ and store/: every member a Protocol
declares exists on each implementation, and each method takes the same parameters (kinds, keyword names).
mypy --strict checks the types; this keeps the shapes honest where mypy does not run."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from glimpse.db.quotas import QuotaRepository
from glimpse.db.repositories import ImageRepository
from glimpse.db.resumable import ResumableUploadRepository
from glimpse.db.tasks import TaskRepository
from glimpse.domain import ports
from glimpse.sources.key_manager import CastellanCertificates
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.http import HttpStore
from glimpse.store.rbd import RbdStore
from glimpse.store.registry import StoreRegistry
from glimpse.store.s3 import S3Store
from glimpse.store.swift import SwiftStore

IMPLEMENTATIONS: list[tuple[type[Any], type[Any]]] = [
    (ports.ImageRepository, ImageRepository),
    (ports.TaskRepository, TaskRepository),
    (ports.QuotaRepository, QuotaRepository),
    (ports.StoreRegistry, StoreRegistry),
    (ports.StagingArea, FilesystemStore),
    *((ports.Store, driver) for driver in (FilesystemStore, HttpStore, S3Store, SwiftStore, RbdStore)),
    (ports.CertificateSource, CastellanCertificates),
    (ports.ResumableUploadRepository, ResumableUploadRepository),
    *((ports.PieceStore, driver) for driver in (FilesystemStore, S3Store, SwiftStore, RbdStore)),
]


def _members(protocol: type[Any]) -> dict[str, Any]:
    names = set(protocol.__dict__) | set(getattr(protocol, "__annotations__", {}))
    return {n: protocol.__dict__.get(n) for n in names if not n.startswith("_")}


def _shape(function: Any) -> list[tuple[str | None, Any]]:
    """Each parameter's kind, and its name where callers must use it (keyword-only)."""
    parameters = inspect.signature(function).parameters.values()
    return [(p.name if p.kind is p.KEYWORD_ONLY else None, p.kind) for p in parameters]


@pytest.mark.parametrize(("protocol", "implementation"), IMPLEMENTATIONS, ids=lambda c: c.__name__)
def test_implementation_has_the_ports_shape(protocol: type[Any], implementation: type[Any]) -> None:
    members = _members(protocol)
    assert members
    for name, declared in members.items():
        if isinstance(declared, property) or declared is None:  # an attribute: set by __init__ or on the class
            source = inspect.getsource(implementation)
            assert f"self.{name} =" in source or f"\n    {name}:" in source or hasattr(implementation, name), name
            continue
        actual = inspect.getattr_static(implementation, name)
        assert callable(actual), f"{implementation.__name__}.{name}"
        assert _shape(actual) == _shape(declared), f"{implementation.__name__}.{name}"


def test_a_missing_method_is_noticed() -> None:
    class Partial:
        def get(self, image_id: str) -> None: ...

    with pytest.raises(AttributeError):
        test_implementation_has_the_ports_shape(ports.ImageRepository, Partial)
