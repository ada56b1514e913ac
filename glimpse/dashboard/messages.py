"""The domain's errors in a person's words, for every page that shows one.

The policy engine refuses with its rule's name ("You are not authorized to complete publicize_image action.",
which the API keeps for Glance's clients); a person reads what they may not do instead.
"""

from __future__ import annotations

import re

from glimpse.errors import GlimpseError

# Every rule a dashboard page can meet, by the action it guards.
POLICY_SENTENCES: dict[str, str] = {
    "add_image": "You may not create images.",
    "get_image": "You may not see this image.",
    "get_images": "You may not list images.",
    "modify_image": "You may not change this image.",
    "delete_image": "You may not delete this image.",
    "publicize_image": "You may not make images public.",
    "communitize_image": "You may not make images community images.",
    "upload_image": "You may not upload data to this image.",
    "download_image": "You may not download this image's data.",
    "deactivate": "You may not deactivate this image.",
    "reactivate": "You may not reactivate this image.",
    "copy_image": "You may not copy this image to other stores.",
    "get_image_location": "You may not see where this image's data is stored.",
    "add_member": "You may not share this image with other projects.",
    "delete_member": "You may not stop sharing this image.",
    "get_member": "You may not see this image's sharing.",
    "get_members": "You may not see who this image is shared with.",
    "modify_member": "You may not accept or decline this shared image.",
    "tasks_api_access": "You may not import images.",
    "add_task": "You may not import images.",
    "get_project_quota": "You may not see this project's quotas.",
    "set_project_quota": "You may not change quotas.",
    "get_metadef_namespaces": "You may not read the metadata definitions.",
    "get_metadef_namespace": "You may not read this metadata definition.",
    "list_metadef_resource_types": "You may not read the metadata definitions.",
    "get_webhooks": "You may not see webhooks.",
    "get_webhook": "You may not see this webhook.",
    "add_webhook": "You may not add webhooks.",
    "add_global_webhook": "You may not add webhooks for every project.",
    "modify_webhook": "You may not change this webhook.",
    "delete_webhook": "You may not delete this webhook.",
    "test_webhook": "You may not test this webhook.",
    "get_binned_images": "You may not see the recycle bin.",
    "get_binned_image": "You may not see this image in the recycle bin.",
    "restore_image": "You may not restore this image.",
    "purge_image": "You may not purge this image.",
    "get_bin_retention": "You may not see how long the recycle bin keeps images.",
    "set_bin_retention": "You may not change how long the recycle bin keeps images.",
    "get_retention_policies": "You may not see the retention policies.",
    "manage_retention_policy": "You may not change the retention policies.",
    "run_retention": "You may not run the retention policies.",
}
UNNAMED_REFUSAL = "Your role does not allow this."

_POLICY_REFUSAL = re.compile(r"You are not authorized to complete (?P<rule>\w+) action\.")


def refusal(rule: str) -> str:
    return POLICY_SENTENCES.get(rule, UNNAMED_REFUSAL)


def message_for(exc: GlimpseError) -> str:
    """The error's message, a policy refusal put in words."""
    match = _POLICY_REFUSAL.fullmatch(exc.message)
    return refusal(match["rule"]) if match else exc.message
