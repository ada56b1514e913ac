"""Which options of an operator's files Glimpse does not read: Glance's own (accepted, no effect) or unknown.

An operator's complete glance-api.conf holds hundreds of options Glance reads and Glimpse has no use for
(logging, messaging, the image cache, ...). Those are listed once, in one line, as accepted without effect;
an option neither Glimpse nor Glance 33 declares is unknown, most often a typo, and is warned about.
glance-33-options.txt lists Glance's options (scripts/glance-options regenerates it).
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from oslo_config import cfg

# Sections whose options belong to a library that checks them itself (keystoneauth's plugin options
# differ by auth_type).
PASSTHROUGH_SECTIONS = frozenset({"oslo_limit"})


@dataclass(frozen=True)
class OptionReport:
    unknown: tuple[str, ...]  # "[section] name" neither Glimpse nor Glance reads
    no_effect: tuple[str, ...]  # "[section] name" Glance reads and Glimpse accepts without effect


@cache
def glance_options() -> frozenset[tuple[str, str]]:
    """(section, name) of every option Glance 33's glance-api reads."""
    text = resources.files("glimpse").joinpath("glance-33-options.txt").read_text(encoding="utf-8")
    pairs = (line.split() for line in text.splitlines() if line and not line.startswith("#"))
    return frozenset((section, name) for section, name in pairs)


def _known(sections: Mapping[str, Sequence[cfg.Opt]]) -> set[tuple[str, str]]:
    """(section, name) of every option read, under its deprecated names too (vmware_api_insecure)."""
    return {
        (s, name)
        for s, opts in sections.items()
        for o in opts
        for name in (o.dest, o.name, *(d.name for d in o.deprecated_opts if d.name))
    }


def _file_options(files: Iterable[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for f in files:
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(f)
        found += [("DEFAULT", key) for key in parser.defaults()]
        for section in parser.sections():
            if section in PASSTHROUGH_SECTIONS:
                continue
            found += [(section, key) for key in parser.options(section) if key not in parser.defaults()]
    return found


def report_options(
    files: Iterable[str],
    sections: Mapping[str, Sequence[cfg.Opt]],
    store_sections: Iterable[str] = (),
    driver_options: Iterable[str] = (),
    delegated: Iterable[str] = (),
) -> OptionReport:
    """Sort the options of `files` Glimpse does not read; `sections`: what Glimpse reads, per section.

    store_sections are the multi-store sections (and Glance's reserved stores), where Glance reads the
    [glance_store] options of the store's driver; there, another driver's option (`driver_options` are every
    driver's) is misplaced, so unknown, in Glance as in Glimpse. In a `delegated` section a library Glimpse uses
    (oslo.messaging) reads Glance's options itself: they are read, and anything else there is unknown."""
    known = _known(sections)
    glance = glance_options()
    stores = set(store_sections)
    misplaced = set(driver_options)
    delegate = set(delegated)
    unknown: set[str] = set()
    no_effect: set[str] = set()
    for section, key in _file_options(files):
        if (section, key) in known or (section in delegate and (section, key) in glance):
            continue
        label = f"[{section}] {key}"
        if section in stores:
            accepted = key not in misplaced and ("glance_store", key) in glance
        else:
            accepted = (section, key) in glance
        if accepted:
            no_effect.add(label)
        else:
            unknown.add(label)
    return OptionReport(unknown=tuple(sorted(unknown)), no_effect=tuple(sorted(no_effect)))
