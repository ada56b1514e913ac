from __future__ import annotations

from glimpse.dashboard.explain import explain
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
    assert explain(PolicyRefused("some_rule"), None) == "You are not authorized to complete some_rule action."
