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


# Glance's sample property protection files (etc/*.conf.sample), and the richer ones its own tests use, ship in
# its source release only, not in the wheel: the sdist of the same release is fetched with pip from PyPI,
# checked against this hash, and the files read from it into .cache/ (never copied into the repository).
SDIST_REQUIREMENT = "glance==33.0.0 --hash=sha256:f6483b580565836e412747ed247703e52a96b0cf168c732986ac595377c92678"
SAMPLES = {
    "property-protections-roles.conf.sample": "etc/property-protections-roles.conf.sample",
    "property-protections-policies.conf.sample": "etc/property-protections-policies.conf.sample",
    "tests-property-protections.conf": "glance/tests/etc/property-protections.conf",
    "tests-property-protections-policies.conf": "glance/tests/etc/property-protections-policies.conf",
}
CACHE = ROOT / ".cache" / "glance-33.0.0"


def protection_samples() -> dict[str, Path]:
    """Glance's property protection files (SAMPLES), by name (fetched once into .cache/glance-33.0.0)."""
    import tarfile
    import tempfile

    wanted = {name: CACHE / name for name in SAMPLES}
    if all(path.is_file() for path in wanted.values()):
        return wanted
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        requirement = Path(tmp) / "requirements.txt"
        requirement.write_text(SDIST_REQUIREMENT + "\n")
        pip = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-deps"]
        pip += ["--no-binary", ":all:", "--require-hashes", "-r", str(requirement), "-d", tmp]
        subprocess.run(pip, check=True, timeout=900)
        (sdist,) = Path(tmp).glob("glance-*.tar.gz")
        with tarfile.open(sdist) as tar:
            for name, path in wanted.items():
                member = tar.extractfile(f"glance-33.0.0/{SAMPLES[name]}")
                if member is None:
                    raise RuntimeError(f"{name} is not in {sdist.name}")
                partial = path.with_suffix(".part")
                partial.write_bytes(member.read())
                partial.replace(path)  # whole or absent: a test running meanwhile never reads half a file
    return wanted


if __name__ == "__main__":  # scripts/test prepares the samples before the run
    for sample in protection_samples().values():
        print(sample)
