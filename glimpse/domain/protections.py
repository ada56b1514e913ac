"""Property protections: who may create, read, update and delete which extra properties (Glance's semantics).

The first section of the operator's file whose pattern is found in a property's name decides; a property
no section matches may be neither created, read, updated nor deleted by anyone. The admin role is not
special: it gets what the file grants it. Properties of Glance's own namespace (os_glance*) are set by the
server and readable by everyone. Core attributes (name, visibility, ...) are never protected.

What the caller may not read is absent from what it is shown, as if it did not exist: a replace or remove of
it is a 409 "does not exist", and a filter on it matches nothing (Glance would answer the filter from the
hidden values). Saving an image keeps the properties its caller could not see (Glance's save drops them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Protocol

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Image
from glimpse.domain.property_rules import EVERYONE, NOBODY, OPERATIONS, Section
from glimpse.errors import Forbidden

SERVER_NAMESPACE = "os_glance"


class RuleChecker(Protocol):
    """The policies format: whether the named rule of the policy file holds for the caller alone."""

    def check_rule(self, ctx: RequestContext, rule: str) -> bool: ...


class PropertyProtections:
    """`sections` None: no protection file, everyone may do everything the other rules allow."""

    def __init__(
        self, sections: tuple[Section, ...] | None = None, rule_format: str = "roles", rules: RuleChecker | None = None
    ) -> None:
        if rule_format == "policies" and sections is not None and rules is None:
            raise ValueError("The policies format needs the policy engine.")
        self.sections = sections
        self.rule_format = rule_format
        self.rules = rules
        self._section = lru_cache(maxsize=4096)(self._find_section)

    @property
    def enabled(self) -> bool:
        return self.sections is not None

    def _find_section(self, name: str) -> Section | None:
        for section in self.sections or ():
            if section.pattern.search(name):
                return section
        return None

    def allows(self, ctx: RequestContext, name: str, op: str) -> bool:
        if self.sections is None or name.startswith(SERVER_NAMESPACE):
            return True
        if op not in OPERATIONS:
            return False
        section = self._section(name)
        if section is None:
            return False
        entries = section.allowed[op]
        if not entries or NOBODY in entries:
            return False
        if EVERYONE in entries:
            return True
        if self.rule_format == "policies":
            assert self.rules is not None
            return self.rules.check_rule(ctx, entries[0])
        wanted = {entry.lower() for entry in entries}
        return any(role.lower() in wanted for role in ctx.roles)

    def require(self, ctx: RequestContext, name: str, op: str) -> None:
        """Forbidden, in Glance's words, unless the caller may do `op` on property `name`."""
        if not self.allows(ctx, name, op):
            raise Forbidden(f"Attribute '{name}' is reserved.")

    def readable(self, ctx: RequestContext, properties: Mapping[str, str]) -> dict[str, str]:
        if self.sections is None:
            return dict(properties)
        return {k: v for k, v in properties.items() if self.allows(ctx, k, "read")}

    def hidden(self, ctx: RequestContext, properties: Mapping[str, str]) -> dict[str, str]:
        """The properties the caller may not read (kept aside while it changes the others)."""
        if self.sections is None:
            return {}
        return {k: v for k, v in properties.items() if not self.allows(ctx, k, "read")}

    def shown(self, ctx: RequestContext, image: Image) -> Image:
        """The image as this caller may see it: a copy without the properties it may not read."""
        if self.sections is None:
            return image
        return dataclasses.replace(image, properties=self.readable(ctx, image.properties))

    def shown_all(self, ctx: RequestContext, images: Iterable[Image]) -> list[Image]:
        if self.sections is None:
            return list(images)
        verdicts: dict[str, bool] = {}  # a page repeats names: one decision each (a policy check is not free)

        def readable(name: str) -> bool:
            if name not in verdicts:
                verdicts[name] = self.allows(ctx, name, "read")
            return verdicts[name]

        return [
            dataclasses.replace(image, properties={k: v for k, v in image.properties.items() if readable(k)})
            for image in images
        ]

    def permissions(self, ctx: RequestContext, names: Iterable[str]) -> dict[str, dict[str, bool]]:
        """Per property name, what the caller may do with it (for the dashboard's controls)."""
        return {name: {op: self.allows(ctx, name, op) for op in OPERATIONS} for name in names}


UNPROTECTED = PropertyProtections()
