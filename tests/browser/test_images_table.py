"""The images table as Horizon's Images panel has it: row actions by role, bulk delete, sortable headers,
facet filters, Next and Previous pages; at a desktop width and at 390 px, where it must not scroll sideways."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.pages import csrf_token, flash, log_in
from tests.functional.server import GlimpseServer
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import admin_client, authtoken_conf, register_service

WIDTHS = {"desktop": 1280, "phone": 390}


def _api(server: GlimpseServer, project: str, role: str = "member") -> httpx.Client:
    roles = {"member": "member,reader", "admin": "admin,member,reader", "reader": "reader"}[role]
    return httpx.Client(base_url=server.url, headers={"X-Project-Id": project, "X-Roles": roles}, timeout=30)


def _make(api: httpx.Client, name: str, **fields: Any) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare", **fields}
    response = api.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _project() -> str:
    return f"prj-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=list(WIDTHS))
def sized(request: pytest.FixtureRequest, page: Page) -> Iterator[Page]:
    page.set_viewport_size({"width": WIDTHS[request.param], "height": 900})
    yield page
    # Whatever the test did, the page never scrolls sideways: the table is a card list at 390 px.
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth)
              .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.getBoundingClientRect().right)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), wide


def _row(page: Page, name: str) -> Locator:
    return page.locator("#images tbody tr").filter(has=page.get_by_role("link", name=name, exact=True))


def _menu(page: Page, name: str) -> Locator:
    row = _row(page, name)
    row.locator("summary").click()
    return row.locator(".row-menu ul")


def _names(page: Page) -> Locator:
    return page.locator("#images tbody th[scope=row] a")


def _list(page: Page, server: GlimpseServer, query: str) -> None:
    page.goto(f"{server.url}/dashboard/images?{query}")


def _shot(page: Page, shots: Path, name: str) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=shots / f"images-table-{name}-{width}.png", full_page=True)


def test_row_actions_and_create_follow_the_role(sized: Page, glimpse: GlimpseServer, shots: Path) -> None:
    page, owner, other, tag = sized, _project(), _project(), uuid.uuid4().hex[:6]
    with _api(glimpse, owner) as api:
        mine = f"mine-{tag}"
        _make(api, mine)
    with _api(glimpse, other, "admin") as api:
        public = f"public-{tag}"
        _make(api, public, visibility="public")

    # A member: every action on its own image, none on another project's public one; may create images.
    log_in(page, glimpse.url, owner, "member")
    _list(page, glimpse, f"q={tag}")
    expect(page.locator("#create-image")).to_be_visible()
    menu = _menu(page, mine)
    expect(menu.get_by_role("link")).to_have_text(["Edit", "Update metadata", "Delete"])
    _shot(page, shots, "member-menu")
    menu.get_by_role("link", name="Update metadata").click()
    expect(page).to_have_url(f"{glimpse.url}/dashboard/images/{_row_id(glimpse, owner, mine)}/metadata")
    _list(page, glimpse, f"q={tag}")
    expect(_menu(page, public).get_by_role("link")).to_have_text(["View"])
    expect(_row(page, public).get_by_role("checkbox")).to_have_count(0)
    expect(_row(page, mine).get_by_role("checkbox")).to_have_count(1)
    # No Keystone catalog in no-auth mode: neither Create volume nor Launch is offered.
    expect(page.locator("#images")).not_to_contain_text("Create volume")
    expect(page.locator("#images")).not_to_contain_text("Launch")
    expect(page.get_by_label("Owner (project id)")).to_have_count(0)

    # A reader of the same project: no Create Image, no Edit or Delete, nothing to select.
    page.context.clear_cookies()
    log_in(page, glimpse.url, owner, "reader")
    _list(page, glimpse, f"q={tag}")
    expect(page.locator("#create-image")).to_have_count(0)
    expect(_menu(page, mine).get_by_role("link")).to_have_text(["View"])
    expect(page.locator("#delete-selected")).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)

    # An administrator of a third project: Edit and Delete on everyone's images, and the owner facet.
    page.context.clear_cookies()
    log_in(page, glimpse.url, _project(), "admin")
    _list(page, glimpse, f"q={tag}")
    expect(_menu(page, mine).get_by_role("link")).to_have_text(["Edit", "Update metadata", "Delete"])
    page.get_by_label("Owner (project id)").fill(owner)
    page.get_by_role("button", name="Apply").click()
    expect(_names(page)).to_have_text([mine])


def _row_id(server: GlimpseServer, project: str, name: str) -> str:
    with _api(server, project) as api:
        [image] = api.get("/v2/images", params={"name": name}).json()["images"]
    return str(image["id"])


def test_bulk_delete_confirms_by_name_and_refuses_protected_ones(
    sized: Page, glimpse: GlimpseServer, shots: Path
) -> None:
    page, project, tag = sized, _project(), uuid.uuid4().hex[:6]
    with _api(glimpse, project) as api:
        ids = {n: _make(api, f"{n}-{tag}", protected=n == "guarded") for n in ("alpha", "guarded", "gamma")}
        kept = _make(api, f"kept-{tag}")
    log_in(page, glimpse.url, project, "member")
    _list(page, glimpse, f"q={tag}&sort_key=name&sort_dir=asc")
    _row(page, f"kept-{tag}").get_by_role("checkbox").check()
    page.get_by_label("Select all on this page").check()
    expect(page.locator("#images tbody").get_by_role("checkbox", checked=True)).to_have_count(4)
    page.get_by_label("Select all on this page").uncheck()
    expect(page.locator("#images tbody").get_by_role("checkbox", checked=True)).to_have_count(0)
    for name in ("alpha", "guarded", "gamma"):
        page.get_by_label(f"Select {name}-{tag}").check()
    expect(page.get_by_label("Select all on this page")).to_have_js_property("indeterminate", True)
    page.get_by_role("button", name="Delete selected").click()

    # One confirmation naming each image; the protected one is set apart.
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete 2 images?")
    expect(page.locator("#to-delete li")).to_contain_text([f"“alpha-{tag}”", f"“gamma-{tag}”"])
    expect(page.locator("#protected-note")).to_contain_text(f"“guarded-{tag}”")
    _shot(page, shots, "bulk-confirm")
    page.get_by_role("button", name="Delete 2 images").click()
    flash(page, f"Deleted 2 images: “alpha-{tag}”, “gamma-{tag}”.", error=True)
    flash(page, f"Not deleted: “guarded-{tag}” is protected: unprotect it first.", error=True)
    expect(_names(page)).to_have_text([f"guarded-{tag}", f"kept-{tag}"])  # back on the same list, same search
    message = page.locator(".flash").inner_text()
    assert "policy" not in message and "delete_image" not in message and ids["alpha"] not in message
    with _api(glimpse, project) as api:
        assert api.get(f"/v2/images/{ids['alpha']}").status_code == 404
        assert api.get(f"/v2/images/{ids['gamma']}").status_code == 404
        assert api.get(f"/v2/images/{ids['guarded']}").json()["protected"] is True
        assert api.get(f"/v2/images/{kept}").status_code == 200


def test_bulk_delete_refuses_what_the_caller_may_not_delete(page: Page, glimpse: GlimpseServer) -> None:
    """A hand-made form: another project's image, unknown ids, a foreign return address, no CSRF token."""
    project, tag = _project(), uuid.uuid4().hex[:6]
    with _api(glimpse, _project(), "admin") as api:
        theirs = _make(api, f"theirs-{tag}", visibility="public")
    with _api(glimpse, project) as api:
        own = _make(api, f"own-{tag}")
        twin = _make(api, f"own-{tag}")
    log_in(page, glimpse.url, project, "member")
    _list(page, glimpse, f"q={tag}")
    url = f"{glimpse.url}/dashboard/images/selected/delete"
    form = {"id": "", "confirmed": "yes", "back_to": "https://elsewhere.example/", "csrf_token": "forged"}
    assert page.request.post(url, form=form, max_redirects=0).status == 403
    body = "&".join(
        [f"csrf_token={csrf_token(page)}", "confirmed=yes", "back_to=https://elsewhere.example/"]
        + [f"id={i}" for i in (theirs, own, twin, str(uuid.uuid4()))]
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = page.request.post(url, data=body, headers=headers, max_redirects=0)
    assert response.status == 303 and response.headers["location"] == "/dashboard/images"
    page.goto(f"{glimpse.url}/dashboard/images")
    # Two images of the same name are told apart by their ids.
    flash(page, f"Deleted 2 images: “own-{tag}” ({own}), “own-{tag}” ({twin}).", error=True)
    flash(page, f"“theirs-{tag}” cannot be deleted by you", error=True)
    flash(page, "1 of the selected images no longer exists.", error=True)
    with _api(glimpse, project) as api:
        assert api.get(f"/v2/images/{theirs}").status_code == 200
        assert api.get(f"/v2/images/{own}").status_code == 404


def test_sort_headers_keep_the_filters(sized: Page, glimpse: GlimpseServer) -> None:
    page, project, tag = sized, _project(), uuid.uuid4().hex[:6]
    with _api(glimpse, project) as api:
        for name in ("m", "z", "a"):
            _make(api, f"{name}-{tag}", os_distro="cirros")
        _make(api, f"b-{tag}", os_distro="ubuntu")
    log_in(page, glimpse.url, project, "member")
    _list(page, glimpse, f"q={tag}&os_distro=cirros")
    expect(_names(page)).to_have_text([f"a-{tag}", f"z-{tag}", f"m-{tag}"])  # newest first
    if page.viewport_size and page.viewport_size["width"] > 640:
        page.locator("#images thead").get_by_role("link", name="Name").click()
    else:  # the card list has no header row: the form's sort fields do the same
        page.get_by_label("Sort by").select_option("name")
        page.get_by_label("Order").select_option("asc")
        page.get_by_role("button", name="Apply").click()
    expect(_names(page)).to_have_text([f"a-{tag}", f"m-{tag}", f"z-{tag}"])
    expect(page.locator("#images thead th[aria-sort=ascending]")).to_contain_text("Name")
    expect(page.locator("#images thead th[aria-sort=descending]")).to_have_count(0)
    expect(page.get_by_label("OS distribution")).to_have_value("cirros")
    expect(page.get_by_label("Search")).to_have_value(tag)
    page.goto(
        glimpse.url + (page.locator("#images thead").get_by_role("link", name="Name").get_attribute("href") or "")
    )
    expect(_names(page)).to_have_text([f"z-{tag}", f"m-{tag}", f"a-{tag}"])
    expect(page.locator("#images thead th[aria-sort=descending]")).to_contain_text("Name")
    expect(page.locator("#images thead th[aria-sort=none]").first).to_be_attached()


def test_facet_filters(sized: Page, glimpse: GlimpseServer) -> None:
    page, project, tag = sized, _project(), uuid.uuid4().hex[:6]
    with _api(glimpse, project) as api:
        _make(api, f"arm-{tag}", architecture="aarch64", os_distro="debian")
        _make(api, f"iso-{tag}", disk_format="iso", container_format="bare", protected=True)
        _make(api, f"ova-{tag}", disk_format="vmdk", container_format="ova")
    log_in(page, glimpse.url, project, "member")
    _list(page, glimpse, f"q={tag}")
    expect(_names(page)).to_have_count(3)
    cases = [
        ("Architecture", "aarch64", f"arm-{tag}"),
        ("OS distribution", "debian", f"arm-{tag}"),
        ("Disk format", "iso", f"iso-{tag}"),
        ("Container format", "ova", f"ova-{tag}"),
        ("Protected", "true", f"iso-{tag}"),
    ]
    for label, value, expected in cases:
        _list(page, glimpse, f"q={tag}")
        field = page.get_by_label(label, exact=True)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
        page.get_by_role("button", name="Apply").click()
        expect(_names(page)).to_have_text([expected])
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
    # A value the API refuses is a message on the page, not a server error.
    _list(page, glimpse, "status=bogus")
    expect(page.get_by_role("alert")).to_contain_text("Invalid status value: bogus")


def test_next_and_previous_pages(sized: Page, glimpse: GlimpseServer) -> None:
    page, project = sized, _project()
    with _api(glimpse, project) as api:
        for i in range(23):
            _make(api, f"img-{i:02d}")
    log_in(page, glimpse.url, project, "member")
    _list(page, glimpse, "scope=project&limit=10&sort_key=name&sort_dir=asc")
    expected = [[f"img-{i:02d}" for i in range(start, min(start + 10, 23))] for start in (0, 10, 20)]
    expect(_names(page)).to_have_text(expected[0])
    expect(page.locator("#previous-page")).to_have_count(0)
    page.get_by_role("link", name="Next page").click()
    expect(_names(page)).to_have_text(expected[1])
    page.get_by_role("link", name="Next page").click()
    expect(_names(page)).to_have_text(expected[2])
    expect(page.locator("#next-page")).to_have_count(0)
    expect(page.get_by_label("Images", exact=True)).to_have_value("project")  # the filters ride along
    page.get_by_role("link", name="Previous page").click()
    expect(_names(page)).to_have_text(expected[1])
    page.get_by_role("link", name="Previous page").click()
    expect(_names(page)).to_have_text(expected[0])
    expect(page.locator("#previous-page")).to_have_count(0)
    # Forward again, then straight to the first page.
    page.get_by_role("link", name="Next page").click()
    page.get_by_role("link", name="Next page").click()
    page.get_by_role("link", name="First page").click()
    expect(_names(page)).to_have_text(expected[0])


@pytest.fixture(scope="module")
def glimpse_ks(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlimpseServer]:
    conf = "[paste_deploy]\nflavor = keystone\n" + authtoken_conf(keystone_server)
    server = GlimpseServer(tmp_path_factory.mktemp("glimpse-images-table"), extra_conf=conf).start()
    yield server
    server.stop()


@pytest.fixture
def compute_and_volume(keystone_server: KeystoneServer) -> Iterator[None]:
    """Nova and Cinder in the catalog (their endpoints need not answer: the dashboard only reads the catalog)."""
    kinds = {"compute": "nova", "volumev3": "cinderv3"}
    for kind, name in kinds.items():
        register_service(keystone_server, kind, f"http://127.0.0.1:9/{name}", name=name)
    yield
    with admin_client(keystone_server) as client:
        for kind in kinds:
            for service in client.get("services", params={"type": kind}).json()["services"]:
                for endpoint in client.get("endpoints", params={"service_id": service["id"]}).json()["endpoints"]:
                    client.delete(f"endpoints/{endpoint['id']}").raise_for_status()
                client.delete(f"services/{service['id']}").raise_for_status()


def _ks_log_in(page: Page, server: GlimpseServer, projects: dict[str, Any], user: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{server.url}/dashboard/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(projects["users"][user]["password"])
    page.get_by_label("Project").fill("Prj1")
    page.get_by_role("button", name="Log in").click()
    flash(page, "Logged in to project Prj1")


def test_launch_and_create_volume_follow_the_catalog(
    sized: Page,
    glimpse_ks: GlimpseServer,
    keystone_projects: dict[str, Any],
    request: pytest.FixtureRequest,
    shots: Path,
) -> None:
    page, name = sized, f"catalog-{uuid.uuid4().hex[:6]}"
    # Without Nova or Cinder in the catalog, neither is offered.
    token, _ = keystone_projects["token"]("Prj1-member")
    with httpx.Client(base_url=glimpse_ks.url, headers={"X-Auth-Token": token}, timeout=30) as api:
        image_id = _make(api, name)
        octets = {"Content-Type": "application/octet-stream"}
        assert api.put(f"/v2/images/{image_id}/file", content=b"\0" * 4096, headers=octets).status_code == 204
    _ks_log_in(page, glimpse_ks, keystone_projects, "Prj1-member")
    _list(page, glimpse_ks, f"q={name}")
    menu = _menu(page, name)
    expect(menu).not_to_contain_text("Create volume")
    expect(menu).not_to_contain_text("Launch")

    # With them, a member is shown the commands; a reader is not (Nova's and Cinder's defaults refuse readers).
    request.getfixturevalue("compute_and_volume")
    _ks_log_in(page, glimpse_ks, keystone_projects, "Prj1-member")
    _list(page, glimpse_ks, f"q={name}")
    menu = _menu(page, name)
    expect(menu.locator(".external")).to_have_count(2)
    expect(menu).to_contain_text(f"openstack volume create --image {image_id} --size 1 '{name}'")
    expect(menu).to_contain_text(f"openstack server create --image {image_id}")
    _shot(page, shots, "catalog-menu")
    _ks_log_in(page, glimpse_ks, keystone_projects, "Prj1-reader")
    _list(page, glimpse_ks, f"q={name}")
    expect(_menu(page, name).locator(".external")).to_have_count(0)
    expect(page.locator("#create-image")).to_have_count(0)
