"""The property protection file (Glance's property_protection_file): read once at start-up, refused when wrong.

An INI file whose section names are regular expressions over extra-property names, in the order they are
tried; each section names who may create, read, update and delete the properties it matches. In the
`roles` format a value is a comma-separated list of roles (`@` everyone, `!` nobody); in the `policies`
format it is the name of one rule of the policy file (or `@` / `!`). An empty value allows nobody.

Glance refuses to start on a section that does not compile, a missing operation, `@` with `!`, or several
policies for one operation; so does Glimpse, naming the file, the section and what is wrong.
"""

from __future__ import annotations

import configparser
import logging
import re
from dataclasses import dataclass

from glimpse.errors import ConfigError

log = logging.getLogger(__name__)

OPERATIONS = ("create", "read", "update", "delete")
EVERYONE = "@"
NOBODY = "!"
FORMATS = ("roles", "policies")


@dataclass(frozen=True)
class Section:
    """One section: the properties its pattern finds (anywhere in the name, as re.search) and, per operation,
    the roles (roles format) or the one policy rule (policies format) that may do it; () allows nobody."""

    name: str
    pattern: re.Pattern[str]
    allowed: dict[str, tuple[str, ...]]


def _entries(value: str, rule_format: str, where: str) -> tuple[str, ...]:
    text = value.strip()
    if not text:
        log.warning("%s is empty: nobody may do it.", where)
        return ()
    if rule_format == "policies":
        if "," in text:
            raise ConfigError(f"{where} = {text}: one policy rule per operation (combine several in the policy file).")
        return (text,)
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    if EVERYONE in entries and NOBODY in entries:
        raise ConfigError(f"{where} = {text}: '@' (everyone) and '!' (nobody) exclude each other.")
    return entries


def parse(text: str, rule_format: str, source: str) -> tuple[Section, ...]:
    """The sections of a protection file's text, in order; ConfigError (naming `source`) when it is not valid."""
    if rule_format not in FORMATS:
        raise ConfigError(f"property_protection_rule_format = {rule_format}: use roles or policies.")
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"Property protection file {source} cannot be read: {exc}") from None
    sections = []
    for name in parser.sections():
        if name.startswith("os_glance"):
            # Glance's own namespace: the server sets those properties; a file cannot restrict them.
            log.warning("Property protection file %s: section [%s] is ignored (os_glance* is reserved).", source, name)
            continue
        try:
            pattern = re.compile(name)
        except re.error as exc:
            msg = f"Property protection file {source}: [{name}] is not a regular expression: {exc}."
            raise ConfigError(msg) from None
        missing = [op for op in OPERATIONS if not parser.has_option(name, op)]
        if missing:
            raise ConfigError(f"Property protection file {source}: [{name}] does not say {', '.join(missing)}.")
        extra = sorted(set(parser.options(name)) - set(OPERATIONS) - set(parser.defaults()))
        if extra:
            log.warning("Property protection file %s: [%s] %s is not an operation; ignored.", source, name,
                        ", ".join(extra))  # fmt: skip
        allowed = {}
        for op in OPERATIONS:
            try:
                value = parser.get(name, op)
            except configparser.Error as exc:
                raise ConfigError(f"Property protection file {source}: [{name}] {op}: {exc}") from None
            allowed[op] = _entries(value, rule_format, f"Property protection file {source}: [{name}] {op}")
        sections.append(Section(name, pattern, allowed))
    return tuple(sections)
