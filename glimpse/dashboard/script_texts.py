"""The sentences the dashboard's scripts (static/upload.js, detail.js) say, marked for the catalog.

A page that loads those scripts renders them, translated, as a JSON block (scripts are not inline: the CSP
forbids that, a data block is not run); static/texts.js reads it. Placeholders are {name}, filled by the script.
"""

from __future__ import annotations

from glimpse.dashboard.i18n import N_, Speech

SCRIPT_TEXTS = (
    N_("The connection broke during the upload."),
    N_("The server answered {status}."),
    N_("Unfinished upload: {uploads}. Choose the same file and create the image to go on where it stopped."),
    N_("Unfinished uploads: {uploads}. Choose the same file and create the image to go on where it stopped."),
    N_("{file} into image {image}"),
    N_("Resuming the earlier upload of {file} into image {image}…"),
    N_("Creating the image…"),
    N_("Uploaded {percent}% ({sent} of {total} bytes)"),
    N_("Resumed into image {image}. Uploaded {percent}% ({sent} of {total} bytes)"),
    N_("Upload complete. Opening the image…"),
    N_("{reason} Image “{image}” was created but has no data."),
    N_("Upload its data again on its page."),
    N_(
        "{reason} Image “{image}” was created but has no data: choose the file again to resume, "
        "or open it to delete it."
    ),
    N_("Open the image."),
    N_("Upload cancelled. Removing the unfinished image…"),
    N_("Upload cancelled; the unfinished image was removed."),
    N_("Upload cancelled; the unfinished image is left queued ({reason})."),
    N_("Uploading…"),
    N_("The upload failed."),
    N_("The format of {file} could not be detected: choose it."),
    N_("{file} looks like {format}, which this cloud does not take."),
    N_("Detected {format} from the file's content. You can choose another format."),
    N_("Detected {format} from the file's name. You can choose another format."),
    N_("Detecting the format of {file}…"),
    N_("The format could not be detected ({reason}): choose it."),
    N_("Detected {format}; you chose {chosen}."),
    N_("none"),
    N_("Uploaded {percent}%"),
    N_("Upload complete."),
    N_("The upload failed: {reason}"),
)


def script_texts(speech: Speech) -> dict[str, str]:
    """Each script sentence (its English) -> how speech says it."""
    return {text: speech.gettext(text) for text in SCRIPT_TEXTS}
