"""Names of data still being written, shared by the drivers, so a crashed writer's leftovers are found.

Every partial name carries the writer's node tag and a random upload tag: another node never takes a
live writer's data for a dead one's, and two uploads of one image on one node never collide.
- file and rbd write `<image id>.<node tag>.<upload tag>.partial` and rename it when complete;
- swift writes segments `<image id>-<node tag>-<upload tag>-<nnnnn>` and publishes a manifest listing them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import uuid

PARTIAL = ".partial"


def node_tag(node: str) -> str:
    """A dot-free tag naming the writer in partial names, so one node never matches another."""
    return hashlib.sha1(node.encode(), usedforsecurity=False).hexdigest()[:16]


def upload_tag() -> str:
    return uuid.uuid4().hex[:8]


def partial_name(image_id: str, tag: str) -> str:
    """A fresh temporary name for image_id's data written by the node tagged `tag` (file and rbd)."""
    return f"{image_id}.{tag}.{upload_tag()}{PARTIAL}"


def partial_pattern(tag: str, image_id: str = "*") -> str:
    """A glob matching the temporary names the node tagged `tag` gave image_id's data (every image's by default)."""
    return f"{image_id}.{tag}.*{PARTIAL}"


def is_partial(name: str, tag: str, image_id: str = "*") -> bool:
    return fnmatch.fnmatchcase(name, partial_pattern(tag, image_id))


def segment_prefix(image_id: str, tag: str) -> str:
    """The prefix of the segments of one new upload of image_id by the node tagged `tag` (swift)."""
    return f"{node_segments_prefix(image_id, tag)}{upload_tag()}-"


def node_segments_prefix(image_id: str, tag: str) -> str:
    """The prefix shared by every segment the node tagged `tag` wrote for image_id, whatever the upload."""
    return f"{image_id}-{tag}-"


def segment_pattern(tag: str) -> re.Pattern[str]:
    """Matches the segments the node tagged `tag` wrote, naming the image (group `image`) and the upload."""
    return re.compile(rf"^(?P<image>.+)-{tag}-(?P<upload>[0-9a-f]{{8}})-\d{{5}}$")
