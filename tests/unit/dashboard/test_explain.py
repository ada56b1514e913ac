from __future__ import annotations

from glimpse.dashboard.explain import explain
from glimpse.dashboard.i18n import Speech
from glimpse.domain.entities import Image
from glimpse.errors import BadRequest, ImageProtected, PolicyRefused

IMAGE = Image(id="1b2c", owner="p", name="cirros")


def test_refusals_name_the_image_and_what_was_refused() -> None:
    assert explain(PolicyRefused("publicize_image"), IMAGE) == "You may not make images public."
    assert explain(PolicyRefused("delete_image"), IMAGE) == "You may not delete image 'cirros'."
    assert explain(ImageProtected("1b2c"), IMAGE) == "Image 'cirros' is protected: unprotect it before deleting it."
    assert explain(PolicyRefused("delete_image"), Image(id="1b2c", owner="p")) == "You may not delete image 1b2c."


def test_other_messages_name_the_image_by_its_name() -> None:
    assert explain(BadRequest("Image 1b2c is odd."), IMAGE) == "Image 'cirros' is odd."
    # Without an image, a refusal is still put in a person's words rather than the policy engine's.
    assert explain(PolicyRefused("some_rule"), None) == "Your role does not allow this."


def test_refusals_are_said_in_the_readers_language() -> None:
    italian = Speech("it").gettext
    assert explain(PolicyRefused("delete_image"), IMAGE, italian) == "Non puoi eliminare l’immagine 'cirros'."  # noqa: RUF001
    assert explain(ImageProtected("1b2c"), IMAGE, italian).startswith("L’immagine 'cirros' è protetta")  # noqa: RUF001
