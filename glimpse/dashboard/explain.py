"""A refusal about one image, in a person's words: what they may not do to which image, named by its name.

The domain's messages are the API's (Glance's wording, which the real clients show as is); the dashboard
knows the image its user is looking at, so it can say "You may not delete image 'cirros'".
"""

from __future__ import annotations

from glimpse.dashboard.i18n import N_, Translate, english
from glimpse.dashboard.messages import message_for
from glimpse.domain.entities import Image
from glimpse.errors import GlimpseError, ImageProtected, PolicyRefused

# What each policy rule lets its holder do to an image (%(image)s is the image's name in quotes).
REFUSED = {
    "publicize_image": N_("You may not make images public."),
    "communitize_image": N_("You may not make images community images."),
    "modify_image": N_("You may not change image %(image)s."),
    "delete_image": N_("You may not delete image %(image)s."),
    "deactivate": N_("You may not deactivate image %(image)s."),
    "reactivate": N_("You may not reactivate image %(image)s."),
    "upload_image": N_("You may not upload data to image %(image)s."),
    "download_image": N_("You may not download image %(image)s."),
    "add_member": N_("You may not share image %(image)s with other projects."),
    "delete_member": N_("You may not stop sharing image %(image)s."),
    "modify_member": N_("You may not accept or reject image %(image)s."),
    "get_members": N_("You may not see whom image %(image)s is shared with."),
    "add_image": N_("You may not create images."),
}


def named(image: Image) -> str:
    return f"'{image.name}'" if image.name else image.id


def explain(exc: GlimpseError, image: Image | None, _: Translate = english) -> str:
    """The message to show for a refused action on `image` (message_for's when there is none better)."""
    if image is None:
        return message_for(exc, _)
    if isinstance(exc, ImageProtected):
        return _("Image %(image)s is protected: unprotect it before deleting it.", image=named(image))
    if isinstance(exc, PolicyRefused) and exc.rule in REFUSED:
        return _(REFUSED[exc.rule], image=named(image))
    message = message_for(exc, _)
    return message.replace(image.id, named(image)) if image.name else message
