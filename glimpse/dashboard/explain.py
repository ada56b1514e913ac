"""A refusal about one image, in a person's words: what they may not do to which image, named by its name.

The domain's messages are the API's (Glance's wording, which the real clients show as is); the dashboard
knows the image its user is looking at, so it can say "You may not delete image 'cirros'".
"""

from __future__ import annotations

from glimpse.domain.entities import Image
from glimpse.errors import GlimpseError, ImageProtected, PolicyRefused

# What each policy rule lets its holder do to an image ({} is the image's name in quotes).
REFUSED = {
    "publicize_image": "You may not make images public.",
    "communitize_image": "You may not make images community images.",
    "modify_image": "You may not change image {}.",
    "delete_image": "You may not delete image {}.",
    "deactivate": "You may not deactivate image {}.",
    "reactivate": "You may not reactivate image {}.",
    "upload_image": "You may not upload data to image {}.",
    "download_image": "You may not download image {}.",
    "add_member": "You may not share image {} with other projects.",
    "delete_member": "You may not stop sharing image {}.",
    "modify_member": "You may not accept or reject image {}.",
    "get_members": "You may not see whom image {} is shared with.",
    "add_image": "You may not create images.",
}


def named(image: Image) -> str:
    return f"'{image.name}'" if image.name else image.id


def explain(exc: GlimpseError, image: Image | None) -> str:
    """The message to show for a refused action on `image` (the domain's own when there is none better)."""
    if image is None:
        return exc.message
    if isinstance(exc, ImageProtected):
        return f"Image {named(image)} is protected: unprotect it before deleting it."
    if isinstance(exc, PolicyRefused) and exc.rule in REFUSED:
        return REFUSED[exc.rule].format(named(image))
    return exc.message.replace(image.id, named(image)) if image.name else exc.message
