"""Property protections over the whole app in-process (real SQLite, no-auth headers), with the rules of
Glance's own files: its samples and the files its functional tests use (fetched from its sdist)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.errors import ConfigError
from tests.glance_install import protection_samples
from tests.integration.inprocess import app_client, settings_for

PATCH = "application/openstack-images-v2.1-json-patch"
JSON = {"Accept": "application/json"}  # errors in Glance's JSON body (else WebOb's HTML page)
MEMBER = {**JSON, "X-Project-Id": "p1", "X-Roles": "reader,member"}
SPL = {**JSON, "X-Project-Id": "p1", "X-Roles": "reader,member,spl_role"}
ADMIN = {**JSON, "X-Project-Id": "p1", "X-Roles": "admin"}
BASE = {"disk_format": "raw", "container_format": "bare"}


def _client(tmp: Path, sample: str, fmt: str = "roles", policy: str = "") -> Iterator[TestClient]:
    conf = f"[DEFAULT]\nproperty_protection_file = {protection_samples()[sample]}\n"
    conf += f"property_protection_rule_format = {fmt}\n"
    if policy:
        (tmp / "policy.yaml").write_text(policy)
        conf += f"[oslo_policy]\npolicy_file = {tmp / 'policy.yaml'}\n"
    with app_client(settings_for(tmp, None, conf)) as client:
        yield client


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _client(tmp_path_factory.mktemp("roles"), "tests-property-protections.conf")


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    policy = '"glance_creator": "role:admin or role:spl_role"\n'
    yield from _client(tmp_path_factory.mktemp("pol"), "tests-property-protections-policies.conf", "policies", policy)


def create(client: TestClient, headers: dict[str, str], **props: str) -> dict[str, object]:
    made = client.post("/v2/images", json={**BASE, **props}, headers=headers)
    assert made.status_code == 201, made.text
    body: dict[str, object] = made.json()
    return body


def patch(client: TestClient, image_id: object, headers: dict[str, str], *ops: dict[str, str]) -> tuple[int, dict]:
    answer = client.patch(f"/v2/images/{image_id}", json=list(ops), headers={**headers, "Content-Type": PATCH})
    return answer.status_code, answer.json()


def test_create_needs_create_on_every_extra_property(roles: TestClient) -> None:
    refused = roles.post("/v2/images", json={**BASE, "foo": "bar", "x_owner_foo": "o"}, headers=MEMBER)
    assert refused.status_code == 403
    assert "Attribute 'foo' is reserved." in refused.text
    assert create(roles, MEMBER, x_owner_foo="o")["x_owner_foo"] == "o"
    assert create(roles, SPL, spl_create_prop="c")["spl_create_prop"] == "c"
    assert roles.post("/v2/images", json={**BASE, "x_none_permitted_a": "1"}, headers=ADMIN).status_code == 403
    assert create(roles, MEMBER, x_all_permitted_a="1")["x_all_permitted_a"] == "1"
    # Readable by nobody: created, then absent from the very answer that created it.
    assert "x_none_read" not in create(roles, MEMBER, x_none_read="secret")


def test_reading_hides_in_show_list_and_filters(roles: TestClient) -> None:
    image = create(roles, ADMIN, spl_read_prop="r", foo="admin-only")
    shown = roles.get(f"/v2/images/{image['id']}", headers=SPL).json()
    assert shown["spl_read_prop"] == "r" and "foo" not in shown
    member_view = roles.get(f"/v2/images/{image['id']}", headers=MEMBER).json()
    assert "spl_read_prop" not in member_view and "foo" not in member_view
    listed = roles.get("/v2/images", headers=MEMBER).json()["images"]
    assert all("foo" not in i and "spl_read_prop" not in i for i in listed)
    assert image["id"] in [i["id"] for i in listed]
    # A filter on a property the caller cannot read finds nothing, whatever the value (no oracle).
    assert roles.get("/v2/images?foo=admin-only", headers=MEMBER).json()["images"] == []
    assert [i["id"] for i in roles.get("/v2/images?foo=admin-only", headers=ADMIN).json()["images"]] == [image["id"]]


def test_patch_checks_update_and_delete_per_operation(roles: TestClient) -> None:
    image = create(roles, ADMIN, spl_update_prop="u0", spl_read_prop="r", spl_delete_prop="d",
                   spl_delete_empty_prop="", spl_create_prop="c")  # fmt: skip
    status, _ = patch(roles, image["id"], SPL, {"op": "replace", "path": "/spl_read_prop", "value": "x"})
    assert status == 403
    status, _ = patch(roles, image["id"], SPL, {"op": "add", "path": "/spl_new_prop", "value": "n"},
                      {"op": "remove", "path": "/spl_create_prop"})  # fmt: skip
    assert status == 403
    status, body = patch(roles, image["id"], SPL, {"op": "replace", "path": "/spl_update_prop", "value": ""},
                         {"op": "replace", "path": "/spl_update_prop", "value": "u"})  # fmt: skip
    assert status == 200 and body["spl_update_prop"] == "u"
    status, body = patch(roles, image["id"], SPL, {"op": "remove", "path": "/spl_delete_prop"},
                         {"op": "remove", "path": "/spl_delete_empty_prop"})  # fmt: skip
    assert status == 200 and "spl_delete_prop" not in body and "spl_delete_empty_prop" not in body
    after = roles.get(f"/v2/images/{image['id']}", headers=ADMIN).json()
    assert (after["spl_read_prop"], after["spl_create_prop"]) == ("r", "c")  # the refused requests changed nothing


def test_what_the_caller_cannot_read_does_not_exist_for_it_and_survives_its_changes(roles: TestClient) -> None:
    image = create(roles, ADMIN, foo="keep", x_owner_a="1")
    for op in ({"op": "replace", "path": "/foo", "value": "x"}, {"op": "remove", "path": "/foo"}):
        status, body = patch(roles, image["id"], MEMBER, op)
        assert status == 409 and "Property foo does not exist." in str(body)
    status, body = patch(roles, image["id"], MEMBER, {"op": "add", "path": "/foo", "value": "x"})
    assert status == 403  # an add of what it cannot see is a creation
    status, body = patch(roles, image["id"], MEMBER, {"op": "replace", "path": "/name", "value": "renamed"},
                         {"op": "remove", "path": "/x_owner_a"})  # fmt: skip
    assert status == 200 and "foo" not in body
    after = roles.get(f"/v2/images/{image['id']}", headers=ADMIN).json()
    assert (after["name"], after["foo"], "x_owner_a" in after) == ("renamed", "keep", False)


def test_read_only_and_update_only_properties(roles: TestClient) -> None:
    image = create(roles, ADMIN, x_none_update="v", x_none_delete="w")
    assert patch(roles, image["id"], ADMIN, {"op": "replace", "path": "/x_none_update", "value": "z"})[0] == 403
    assert patch(roles, image["id"], ADMIN, {"op": "add", "path": "/x_none_update", "value": "z"})[0] == 403
    assert patch(roles, image["id"], ADMIN, {"op": "remove", "path": "/x_none_update"})[0] == 200
    status, body = patch(roles, image["id"], MEMBER, {"op": "replace", "path": "/x_none_delete", "value": "u"})
    assert status == 200 and body["x_none_delete"] == "u"
    assert patch(roles, image["id"], ADMIN, {"op": "remove", "path": "/x_none_delete"})[0] == 403


def test_policies_format(policies: TestClient) -> None:
    assert policies.post("/v2/images", json={**BASE, "foo": "bar"}, headers=MEMBER).status_code == 403
    assert create(policies, ADMIN, foo="bar")["foo"] == "bar"
    image = create(policies, SPL, spl_creator_policy="c")
    assert image["spl_creator_policy"] == "c"
    assert patch(policies, image["id"], SPL, {"op": "replace", "path": "/spl_creator_policy", "value": "z"})[0] == 403
    status, body = patch(policies, image["id"], ADMIN, {"op": "replace", "path": "/spl_creator_policy", "value": "r"})
    assert status == 200 and body["spl_creator_policy"] == "r"
    other = create(policies, ADMIN, spl_default_policy="d")
    seen = policies.get(f"/v2/images/{other['id']}", headers={**JSON, "X-Project-Id": "p1", "X-Roles": "reader,x"})
    assert seen.json()["spl_default_policy"] == "d"  # read = default: everyone


def test_the_legacy_import_task_creates_its_image_under_the_same_rules(roles: TestClient) -> None:
    body = {"type": "import", "input": {"import_from": "http://93.184.216.34/a.img", "import_from_format": "raw",
                                        "image_properties": {**BASE, "x_none_permitted_a": "1"}}}  # fmt: skip
    before = len(roles.get("/v2/images", headers=ADMIN).json()["images"])
    refused = roles.post("/v2/tasks", json=body, headers=ADMIN)
    assert refused.status_code == 403 and "Attribute 'x_none_permitted_a' is reserved." in refused.text
    assert len(roles.get("/v2/images", headers=ADMIN).json()["images"]) == before


@pytest.mark.parametrize("sample", ["property-protections-roles.conf.sample", "tests-property-protections.conf"])
def test_glances_role_samples_load(tmp_path: Path, sample: str) -> None:
    for client in _client(tmp_path, sample):
        made = client.post("/v2/images", json={**BASE, "x_owner_foo": "a"}, headers=MEMBER)
        assert made.status_code == 201 or "x_owner" not in sample


def test_glances_policy_sample_with_default_policy(tmp_path: Path) -> None:
    for client in _client(tmp_path, "property-protections-policies.conf.sample", "policies"):
        made = client.post("/v2/images", json={**BASE, "x_a": "1", "hw_disk_bus": "scsi"}, headers=MEMBER)
        assert made.status_code == 403  # [.*] is context_is_admin
        made = create(client, MEMBER, x_a="1")
        assert made["x_a"] == "1"
        admin = create(client, ADMIN, hw_disk_bus="scsi")
        assert "hw_disk_bus" not in client.get(f"/v2/images/{admin['id']}", headers=MEMBER).json()


@pytest.mark.parametrize(
    ("text", "fmt", "words"),
    [
        ("[(]\ncreate=@\nread=@\nupdate=@\ndelete=@\n", "roles", "is not a regular expression"),
        ("[a]\ncreate=@\nread=@\nupdate=@\n", "roles", "does not say delete"),
        ("[a]\ncreate=@,!\nread=@\nupdate=@\ndelete=@\n", "roles", "exclude each other"),
        ("[a]\ncreate=x,y\nread=@\nupdate=@\ndelete=@\n", "policies", "one policy rule"),
        ("[a]\ncreate=@\nread=@\nupdate=@\ndelete=@\n", "rbac", "property_protection_rule_format"),
    ],
)
def test_an_invalid_file_stops_the_start(tmp_path: Path, text: str, fmt: str, words: str) -> None:
    (tmp_path / "protect.conf").write_text(text)
    conf = f"[DEFAULT]\nproperty_protection_file = protect.conf\nproperty_protection_rule_format = {fmt}\n"
    with pytest.raises(ConfigError) as caught:
        create_app(settings_for(tmp_path, None, conf))
    assert words in caught.value.message


def test_a_missing_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.conf not found"):
        settings_for(tmp_path, None, "[DEFAULT]\nproperty_protection_file = /nowhere.conf\n")
