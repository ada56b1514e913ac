"""qemu-img runs under address-space and CPU-time limits, and running out of them is a clean 400."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from glimpse.formats import conversion
from glimpse.formats.conversion import ConversionLimitExceeded, ProcessLimits, convert, limited, run_qemu_img

MiB = 1024 * 1024
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) is not installed")


def test_the_child_runs_with_the_limits() -> None:
    out = subprocess.run(
        limited(["/bin/cat", "/proc/self/limits"], ProcessLimits(96 * MiB, 7)), capture_output=True, text=True
    ).stdout
    space = next(line for line in out.splitlines() if line.startswith("Max address space")).split()
    cpu = next(line for line in out.splitlines() if line.startswith("Max cpu time")).split()
    assert space[3:5] == [str(96 * MiB), str(96 * MiB)]
    assert cpu[3:5] == ["7", "12"]


@needs_qemu_img
def test_convert_within_the_limits(tmp_path: Path) -> None:
    source = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(source), "16M"], check=True)
    convert(source, "qcow2", "raw", tmp_path / "disk.raw")
    assert (tmp_path / "disk.raw").stat().st_size == 16 * MiB


@needs_qemu_img
def test_qemu_img_out_of_memory_is_a_clean_refusal(tmp_path: Path) -> None:
    source = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(source), "16M"], check=True)
    output = tmp_path / "disk.raw"
    with pytest.raises(ConversionLimitExceeded, match="more than the 32 MiB of memory") as refused:
        convert(source, "qcow2", "raw", output, limits=ProcessLimits(address_space=32 * MiB, cpu_seconds=30))
    assert refused.value.message.startswith("Converting qcow2 to raw")
    assert not output.exists()


def test_qemu_img_out_of_cpu_time_is_a_clean_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversion, "qemu_img", lambda: "/bin/sh")  # a process that only burns CPU
    with pytest.raises(ConversionLimitExceeded, match="more than the 1 s of CPU time"):
        run_qemu_img(["-c", "while :; do :; done"], ProcessLimits(cpu_seconds=1), timeout=60, what="Spinning")
