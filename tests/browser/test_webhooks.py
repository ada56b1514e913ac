"""The dashboard's webhook settings in a real browser: add one with its secret (never shown again), send a test
event that a real receiver verifies, watch it delivered in the log, and delete the webhook."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import flash, log_in
from tests.functional.server import GlimpseServer
from tests.functional.webhook_receiver import Receiver

SECRET = "dashboard-secret-0123"


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    conf = "[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports =\n[webhooks]\npoll_interval = 0.1\n"
    server = GlimpseServer(tmp_path_factory.mktemp("webhooks-dashboard"), extra_conf=conf)
    yield server.start()
    server.stop()


def test_webhook_settings_of_a_project(page: Page, hooked: GlimpseServer) -> None:
    receiver = Receiver(SECRET).start()
    try:
        project = f"prj-wh-{uuid.uuid4().hex[:6]}"
        log_in(page, hooked.url, project, "member")
        page.get_by_role("link", name="Webhooks").click()
        expect(page.locator("#webhooks")).to_contain_text("No webhooks yet.")

        form = page.locator("#webhook-form")
        form.get_by_label("Receiver URL").fill("ftp://files.example.org/x")
        form.get_by_label("Secret").fill(SECRET)
        page.get_by_role("button", name="Add webhook").click()
        flash(page, "The scheme ftp", error=True)  # the egress policy's refusal, as the API gives it

        form.get_by_label("Receiver URL").fill(receiver.url)
        form.get_by_label("Secret").fill(SECRET)
        form.get_by_label("Description").fill("ci pipeline")
        form.get_by_label("image.member (every image.member.* event)").check()
        page.get_by_role("button", name="Add webhook").click()
        flash(page, f"Webhook added: {receiver.url}")
        row = page.locator("#webhooks tbody tr").first
        expect(row).to_contain_text("image.member")
        expect(row).to_contain_text("ci pipeline")
        assert SECRET not in page.content()
        expect(page.get_by_label("Global: every project's events")).to_have_count(0)  # a member makes none

        page.get_by_role("button", name=f"Send test event to {receiver.url}").click()
        flash(page, "Test event")
        [arrived] = receiver.wait_for(1)
        assert arrived.type == "org.openstack.image.webhook.test"
        status = page.locator("#deliveries .delivery-status").first
        for _ in range(50):  # the receiver has it; the log says so once the sender recorded its answer
            page.reload()
            if status.inner_text() == "delivered":
                break
        expect(status).to_have_text("delivered")
        expect(page.locator("#deliveries")).to_contain_text(arrived.id)

        page.get_by_role("button", name=f"Delete webhook {receiver.url}").click()
        flash(page, "Webhook deleted.")
        expect(page.locator("#webhooks")).to_contain_text("No webhooks yet.")
    finally:
        receiver.stop()
