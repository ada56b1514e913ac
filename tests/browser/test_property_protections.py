"""Property protections on the dashboard, in a real browser: what a member may not read is not on the page,
what it may not change or remove is locked, and a forced form is still refused by the server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import flash, log_in, open_image
from tests.functional.server import GlimpseServer
from tests.glance_install import protection_samples


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    rules = protection_samples()["tests-property-protections.conf"]  # Glance's functional tests' roles file
    server = GlimpseServer(tmp_path_factory.mktemp("protected"), extra_conf=f"property_protection_file = {rules}\n")
    yield server.start()
    server.stop()


def test_dashboard_hides_and_locks_protected_properties(page: Page, protected: GlimpseServer) -> None:
    project = f"prj-pp-{uuid.uuid4().hex[:6]}"
    admin = {"X-Project-Id": project, "X-Roles": "admin"}
    member = {"X-Project-Id": project, "X-Roles": "member"}
    props = {"x_owner_os": "linux", "x_none_update": "frozen", "x_none_delete": "kept", "foo": "admins-only"}
    created = httpx.post(f"{protected.url}/v2/images", json={"name": "pp", **props}, headers=admin)
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    assert "foo" not in httpx.get(f"{protected.url}/v2/images/{image_id}", headers=member).json()

    log_in(page, protected.url, project, "member")
    open_image(page, protected.url, image_id)
    page.get_by_role("tab", name="Properties").click()
    form = page.locator("#edit-form")
    expect(form.get_by_label("x_owner_os", exact=True)).to_be_editable()
    expect(form.get_by_label("x_none_update", exact=True)).not_to_be_editable()
    expect(form.get_by_label("Remove x_none_delete")).to_be_disabled()
    expect(form.get_by_label("Remove x_owner_os")).to_be_enabled()
    expect(page.locator("main")).not_to_contain_text("admins-only")
    expect(page.locator("main")).not_to_contain_text("foo")

    form.get_by_label("x_owner_os", exact=True).fill("bsd")
    form.get_by_label("x_none_delete", exact=True).fill("changed")
    page.get_by_role("button", name="Save metadata").click()
    flash(page, "Metadata saved.")
    stored = httpx.get(f"{protected.url}/v2/images/{image_id}", headers=admin).json()
    assert (stored["x_owner_os"], stored["x_none_delete"], stored["foo"]) == ("bsd", "changed", "admins-only")

    # A member who unlocks the box in its browser is refused by the server, and nothing changes.
    page.locator("#edit-form input[name='remove:x_none_delete']").evaluate("box => { box.disabled = false }")
    page.locator("#edit-form input[name='remove:x_none_delete']").check()
    page.get_by_role("button", name="Save metadata").click()
    flash(page, "Attribute 'x_none_delete' is reserved.", error=True)
    stored = httpx.get(f"{protected.url}/v2/images/{image_id}", headers=admin).json()
    assert stored["x_none_delete"] == "changed" and stored["foo"] == "admins-only"

    # The admin's own view of the same image shows what the member could not see.
    page.context.clear_cookies()
    log_in(page, protected.url, project, "admin")
    open_image(page, protected.url, image_id)
    expect(page.locator("#edit-form").get_by_label("foo", exact=True)).to_have_value("admins-only")
