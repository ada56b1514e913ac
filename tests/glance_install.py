"""The real Glance installed by benchmarks/install-glance: its metadefs JSON files and its own schemas.

Tests read Glance's shipped files from there rather than keeping copies; a missing install is made.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "benchmarks" / ".venv-glance"


def glance_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["bash", str(ROOT / "benchmarks" / "install-glance")], check=True, timeout=1800)
    return python


def metadefs_dir() -> Path:
    """The directory of Glance's metadefs *.json files (etc/glance/metadefs in its wheel's data files)."""
    glance_python()
    found = sorted(p for p in VENV.rglob("metadefs") if p.is_dir() and any(p.glob("*.json")))
    if not found:
        raise RuntimeError(f"No metadefs directory with JSON files under {VENV}")
    return found[0]
