"""Glimpse: an image service speaking the OpenStack Images API v2."""

import sys

# httpx loads its own command-line tool (click, rich's syntax highlighting, pygments' lexers: 2.4 MiB in every
# process, each server worker included) whenever those libraries are installed, as rich brings them here; it falls
# back to a stub when the import fails. Glimpse never runs that tool. (Nothing changes if httpx came first.)
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None marks a module that cannot be imported
