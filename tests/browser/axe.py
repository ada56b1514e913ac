"""axe-core (npm, installed by scripts/install-axe-core) run inside the page Playwright has open."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE_JS = Path(__file__).resolve().parents[2] / ".cache/axe-core/node_modules/axe-core/axe.min.js"
BLOCKING = ("serious", "critical")  # the impacts a page may not have; "minor" and "moderate" are reported only


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"[{self.impact}] {self.rule}: {self.help} at {', '.join(self.targets)}"


def axe_path() -> Path:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run bash scripts/install-axe-core")
    return AXE_JS


def violations(page: Page) -> list[Violation]:
    """Every violation axe finds on the page as it is now (WCAG 2.x A and AA plus axe's best practices).

    The dashboard's Content-Security-Policy forbids inline scripts, so the page's context needs bypass_csp=True.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=axe_path())
    found: list[dict[str, Any]] = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        Violation(
            rule=v["id"],
            impact=v.get("impact") or "",
            help=v["help"],
            targets=tuple(" ".join(map(str, node["target"])) for node in v["nodes"]),
        )
        for v in found
    ]


def blocking(page: Page) -> list[Violation]:
    return [v for v in violations(page) if v.impact in BLOCKING]
