"""Disk-format checks on image data as it streams: the content must be what the image says it is, and safe.

oslo.utils' format inspector reads the headers while the bytes pass (nothing is buffered); when the
stream ends the verdict is given before the data can become the image's. Refused: content of another
format than the declared disk_format; content recognised as a format with its own metadata (qcow2,
vmdk, vhd, vhdx, vdi, qed, luks) but declared raw, which Glance lets through; anything that matches
several formats at once; and images failing a safety check (a qcow2 backing or data file, a vmdk
with external extents or a disallowed subformat, a bad GPT/MBR).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from oslo_utils.imageutils import format_inspector as fi

from glimpse.errors import BadRequest

# Formats the inspector understands; the others (ploop, aki, ari, ami) are only checked for not
# being something else in disguise.
INSPECTABLE = frozenset({"raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi", "iso"})
# Content a raw image may legitimately hold: a bare disk, a partitioned (GPT) disk, or an ISO.
RAW_COMPATIBLE = frozenset({"raw", "gpt", "iso"})


@dataclass(frozen=True)
class FormatRules:
    """The [image_format] options Glance names."""

    require_image_format_match: bool = True
    vmdk_allowed_types: tuple[str, ...] = ("streamOptimized", "monolithicSparse")
    gpt_safety_checks_nonfatal: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Verdict:
    format: str
    virtual_size: int | None


class FormatGuard:
    """Passes chunks through while inspecting them; raises BadRequest at the end if the data is refused.

    The refusal comes out of the iteration itself, so the store that consumes it discards the data
    before it is ever published.
    """

    def __init__(self, chunks: Iterable[bytes], disk_format: str, rules: FormatRules) -> None:
        self._chunks = chunks
        self._declared = disk_format
        self._rules = rules
        self.verdict: Verdict | None = None

    def __iter__(self) -> Iterator[bytes]:
        expected = self._declared if self._declared in INSPECTABLE - {"raw"} else None
        wrapper = fi.InspectWrapper(
            iter(self._chunks),  # type: ignore[arg-type]  # annotated IO[bytes]; iterating only calls next() on it
            expected_format=expected,
        )
        try:
            yield from wrapper
            self.verdict = self._judge(wrapper)
        except fi.ImageFormatError as exc:
            raise BadRequest(f"Image content does not match disk_format {self._declared}: {exc}") from None
        finally:
            wrapper.close()

    def _judge(self, wrapper: fi.InspectWrapper) -> Verdict:
        detected = wrapper.format  # ImageFormatError when several formats match
        if detected is None:
            raise BadRequest("The image format could not be determined.")
        name = str(detected)
        if self._rules.require_image_format_match:
            self._check_match(name)
        self._check_safety(detected)
        return Verdict(name, self._virtual_size(detected) or None)  # Glance too leaves 0 (no data) unset

    def _virtual_size(self, detected: fi.FileInspector) -> int | None:
        """Glance's choice: the format's own when it is the declared one (for raw, the size in bytes); the size
        in bytes for data declared raw that holds another format; none for raw data of an uninspectable format."""
        name = str(detected)
        if name == self._declared:
            return int(detected.virtual_size)
        if self._declared == "raw":
            return int(detected.actual_size)
        return int(detected.virtual_size) if name != "raw" else None

    def _check_match(self, detected: str) -> None:
        declared = self._declared
        if declared == "raw" or declared not in INSPECTABLE:
            if detected not in RAW_COMPATIBLE:
                raise BadRequest(
                    f"Image content is {detected} but disk_format is {declared}: declare disk_format={detected}."
                )
        elif detected != declared:
            raise BadRequest(f"Image content is {detected}, which does not match disk_format {declared}.")

    def _check_safety(self, detected: fi.FileInspector) -> None:
        if str(detected) == "raw":
            return
        try:
            detected.safety_check()
        except fi.SafetyCheckFailed as exc:
            fatal = {k: v for k, v in exc.failures.items() if k not in self._rules.gpt_safety_checks_nonfatal}
            if fatal:
                reasons = "; ".join(f"{name}: {err}" for name, err in sorted(fatal.items()))
                raise BadRequest(f"Image is not safe to use ({reasons}).") from None
        if str(detected) == "vmdk":
            subformat = getattr(detected, "vmdktype", "")
            allowed = {t.lower() for t in self._rules.vmdk_allowed_types}
            if subformat.lower() not in allowed:
                raise BadRequest(f"VMDK subformat {subformat} is not allowed here (allowed: {', '.join(allowed)}).")
