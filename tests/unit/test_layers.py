"""The direction of imports (docs/architecture.md), checked on every module's imports, function-level ones too.

    api | dashboard | cli  ->  auth, domain  ->  db, store, formats, sources  ->  errors, config, ...

Only the composition root, glimpse/app.py and its parts in glimpse/assembly/, builds concrete backends and may
import every layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import glimpse

ROOT = Path(glimpse.__file__).parent

INTERFACES = ("glimpse.api", "glimpse.dashboard", "glimpse.cli")
# The domain's leaf modules: plain data and Protocols, which db/ and store/ may name to implement them.
DOMAIN_LEAVES = (
    "glimpse.domain.entities", "glimpse.domain.metadef_entities", "glimpse.domain.ports",
    "glimpse.domain.audit_entries", "glimpse.domain.webhook_entities", "glimpse.domain.session_records",
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    importer: str  # a package (or module) prefix
    forbidden: tuple[str, ...]  # module prefixes it must not import
    allowed: tuple[str, ...] = ()  # imported modules excepted from `forbidden`
    why: str = ""
    exempt: tuple[str, ...] = ()  # importers the rule does not apply to


IMPLEMENTATIONS = (
    "glimpse.db", "glimpse.store", "glimpse.cache", "glimpse.formats", "glimpse.sources", "glimpse.metrics",
    "glimpse.messaging",
)  # fmt: skip

RULES = (
    Rule(
        "glimpse",
        ("glimpse.api",),
        exempt=("glimpse.api", "glimpse.app", "glimpse.assembly"),
        why="nothing imports api/",
    ),
    Rule("glimpse", ("glimpse.app",), exempt=("glimpse.app", "glimpse.cli"), why="only the cli starts the app"),
    Rule(
        "glimpse",
        ("glimpse.assembly",),
        exempt=("glimpse.assembly", "glimpse.app", "glimpse.cli"),
        why="the composition root's parts serve app.py and the cli's one-shot commands only",
    ),
    Rule(
        "glimpse.domain",
        (
            "glimpse.dashboard",
            "glimpse.cli",
            "glimpse.worker",
            "glimpse.db",
            "glimpse.store",
            "glimpse.cache",
            "glimpse.auth",
            "starlette",
            "sqlalchemy",
            "uvicorn",
            "prometheus_client",
            "glimpse.metrics",
        ),
        allowed=("glimpse.store.base", "glimpse.auth.context"),
        why="the domain uses its ports, not HTTP, SQL or a concrete store; of auth only the request context",
    ),
    *(
        Rule(
            layer,
            ("glimpse.domain", "glimpse.dashboard", "glimpse.cli", "glimpse.worker", "glimpse.auth"),
            allowed=DOMAIN_LEAVES,
            why="implementations know the domain's entities and ports only, never its use cases",
        )
        for layer in IMPLEMENTATIONS
    ),
    Rule(
        "glimpse",
        ("prometheus_client",),
        exempt=("glimpse.metrics",),
        why="metrics are Prometheus's in glimpse/metrics/ only; the rest reports through it or through ports",
    ),
    *(
        Rule(
            layer,
            ("glimpse.db", "glimpse.store", "glimpse.cache", "glimpse.messaging"),
            why="interfaces reach data through the domain only",
        )
        for layer in INTERFACES
    ),
    Rule(
        "glimpse.auth",
        ("glimpse.dashboard", "glimpse.cli", "glimpse.db", "glimpse.store", "glimpse.domain"),
        allowed=DOMAIN_LEAVES,
        why="auth sits beside the domain: it may share its entities, not its use cases or its storage",
    ),
)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, resolving relative ones; `from m import n`
    yields m.n (a module when n is one, else a name inside m: its prefix m is judged either way)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:  # the name may be a module of the package: judge it, not the package
                yield node.lineno, f"{target}.{alias.name}"


def violations(root: Path = ROOT) -> list[str]:
    """One line per import statement that breaks a rule: where it is, what it imports, and why not."""
    found: dict[tuple[str, int, str], str] = {}
    for path in sorted(root.rglob("*.py")):
        importer = module_name(path, root)
        place = str(path.relative_to(root.parent))
        for line, target in imports(path, root):
            for rule in RULES:
                if not _within(importer, rule.importer) or any(_within(importer, e) for e in rule.exempt):
                    continue
                if any(_within(target, f) for f in rule.forbidden) and not any(
                    _within(target, a) for a in rule.allowed
                ):
                    key = (place, line, rule.why)
                    if key not in found or len(target) < len(found[key]):
                        found[key] = target
    return [f"{place}:{line}: {module_name(root.parent / place, root)} imports {target} ({why})"
            for (place, line, why), target in sorted(found.items())]  # fmt: skip


def test_imports_point_one_way() -> None:
    wrong = violations()
    assert not wrong, "imports against the direction of the layers:\n" + "\n".join(wrong)


def test_the_walk_sees_every_layer() -> None:
    walked = {module_name(p, ROOT) for p in ROOT.rglob("*.py")}
    for package in ("glimpse.api", "glimpse.domain", "glimpse.db", "glimpse.store", "glimpse.dashboard", "glimpse.cli"):
        assert package in walked


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "glimpse"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_wrong_import_is_reported_with_its_place(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "domain/__init__.py": "",
            "domain/service.py": "def f():\n    from glimpse.db.repositories import ImageRepository\n",
            "db/__init__.py": "",
            "db/tasks.py": "from ..domain import service\nfrom glimpse.domain.entities import Task\n",
            "dashboard/__init__.py": "import glimpse.store.s3\n",
            "store/__init__.py": "from glimpse.api.errors import status_for\n",
            "domain/cache.py": "import prometheus_client\n",
            "dashboard/views.py": "from glimpse.assembly.web import ROUTES\n",
        },
    )
    wrong = violations(root)
    assert any("glimpse.dashboard.views imports glimpse.assembly.web.ROUTES (the composition" in w for w in wrong)
    assert any(w.startswith("glimpse/domain/service.py:2: glimpse.domain.service imports glimpse.db") for w in wrong)
    assert any(
        "glimpse/db/tasks.py:1: glimpse.db.tasks imports glimpse.domain.service (implementations" in w for w in wrong
    )
    assert not any("glimpse.domain.entities" in w for w in wrong)  # the leaf db may use
    assert any("glimpse/dashboard/__init__.py:1: glimpse.dashboard imports glimpse.store.s3" in w for w in wrong)
    assert any("glimpse.store imports glimpse.api.errors.status_for (nothing imports api/)" in w for w in wrong)
    assert any(w.startswith("glimpse/domain/cache.py:1: glimpse.domain.cache imports prometheus_client") for w in wrong)


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "api/__init__.py": "from glimpse.domain.service import ImageService\n",
            "domain/service.py": "from glimpse.domain.ports import Store\nfrom glimpse.store.base import Heartbeat\n",
            "db/repositories.py": "from glimpse.domain.entities import Image\nfrom glimpse.domain import ports\n",
            "app.py": "from glimpse.api import routes\nfrom glimpse.db.repositories import ImageRepository\n",
            "assembly/web.py": "from glimpse.api.v2 import images\nfrom glimpse.store.registry import StoreRegistry\n",
            "cli/db.py": "from glimpse.assembly.operations import purge_database\n",
        },
    )
    assert violations(root) == []
