"""The domain's errors in a person's words, for every page that shows one.

The policy engine refuses with its rule's name ("You are not authorized to complete publicize_image action.",
which the API keeps for Glance's clients); a person reads what they may not do instead.
"""

from __future__ import annotations

import re
from typing import Any

from glimpse.dashboard.i18n import N_, Translate, english
from glimpse.errors import BadRequest, Forbidden, GlimpseError, NotFound

# Every rule a dashboard page can meet, by the action it guards.
POLICY_SENTENCES: dict[str, str] = {
    "add_image": N_("You may not create images."),
    "get_image": N_("You may not see this image."),
    "get_images": N_("You may not list images."),
    "modify_image": N_("You may not change this image."),
    "delete_image": N_("You may not delete this image."),
    "publicize_image": N_("You may not make images public."),
    "communitize_image": N_("You may not make images community images."),
    "upload_image": N_("You may not upload data to this image."),
    "download_image": N_("You may not download this image's data."),
    "deactivate": N_("You may not deactivate this image."),
    "reactivate": N_("You may not reactivate this image."),
    "copy_image": N_("You may not copy this image to other stores."),
    "get_image_location": N_("You may not see where this image's data is stored."),
    "add_member": N_("You may not share this image with other projects."),
    "delete_member": N_("You may not stop sharing this image."),
    "get_member": N_("You may not see this image's sharing."),
    "get_members": N_("You may not see who this image is shared with."),
    "modify_member": N_("You may not accept or decline this shared image."),
    "tasks_api_access": N_("You may not import images."),
    "add_task": N_("You may not import images."),
    "get_project_quota": N_("You may not see this project's quotas."),
    "set_project_quota": N_("You may not change quotas."),
    "get_metadef_namespaces": N_("You may not read the metadata definitions."),
    "get_metadef_namespace": N_("You may not read this metadata definition."),
    "list_metadef_resource_types": N_("You may not read the metadata definitions."),
    "get_webhooks": N_("You may not see webhooks."),
    "get_webhook": N_("You may not see this webhook."),
    "add_webhook": N_("You may not add webhooks."),
    "add_global_webhook": N_("You may not add webhooks for every project."),
    "modify_webhook": N_("You may not change this webhook."),
    "delete_webhook": N_("You may not delete this webhook."),
    "test_webhook": N_("You may not test this webhook."),
    "get_binned_images": N_("You may not see the recycle bin."),
    "get_binned_image": N_("You may not see this image in the recycle bin."),
    "restore_image": N_("You may not restore this image."),
    "purge_image": N_("You may not purge this image."),
    "get_bin_retention": N_("You may not see how long the recycle bin keeps images."),
    "set_bin_retention": N_("You may not change how long the recycle bin keeps images."),
    "get_retention_policies": N_("You may not see the retention policies."),
    "manage_retention_policy": N_("You may not change the retention policies."),
    "run_retention": N_("You may not run the retention policies."),
}
UNNAMED_REFUSAL = N_("Your role does not allow this.")
# Said by more than one page.
SESSION_ENDED = N_("Your session has ended: log in again.")
IMPORT_STARTED = N_("Import started: the image becomes active once its data is downloaded.")
NOTHING_CHANGED = N_("Nothing was changed.")
CATALOG_MISSING = N_("The metadata definitions catalog is not available.")

_POLICY_REFUSAL = re.compile(r"You are not authorized to complete (?P<rule>\w+) action\.")


class Phrased(GlimpseError):
    """An error the dashboard itself raises: its message (marked with N_) and values are kept apart, so a page
    says it in its reader's language; `message` is the English, as for any other error."""

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(english(message, **values))
        self.phrase = message
        self.values = values


class FormError(Phrased, BadRequest):
    pass


class Refused(Phrased, Forbidden):
    pass


class Missing(Phrased, NotFound):
    pass


def refusal(rule: str, _: Translate = english) -> str:
    return _(POLICY_SENTENCES.get(rule, UNNAMED_REFUSAL))


def message_for(exc: GlimpseError, _: Translate = english) -> str:
    """The error's message in the reader's language: the dashboard's own translated, a policy refusal put in
    words; the domain's other messages stay as they are (English, as the API says them)."""
    if isinstance(exc, Phrased):
        return _(exc.phrase, **exc.values)
    match = _POLICY_REFUSAL.fullmatch(exc.message)
    return refusal(match["rule"], _) if match else exc.public_message
