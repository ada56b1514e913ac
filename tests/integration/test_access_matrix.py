"""Property test: visibility x membership x role x operation, against an oracle of Glance's rules.

The whole app runs in-process on a real SQLite database with the default policy; callers are set
through the no-auth headers, exactly as Keystone would set them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.config import load_settings

OWNER, OTHER = "prj-owner", "prj-other"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
DATA = b"image-bytes"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("matrix")
    with TestClient(create_app(load_settings(overrides={"data_dir": str(data_dir)}))) as test_client:
        yield test_client


def _caller(project: str, role: str) -> dict[str, str]:
    return {"X-Project-Id": project, "X-Roles": role}


def _make_image(client: TestClient, visibility: str, membership: str | None, deactivated: bool) -> str:
    image = client.post(
        "/v2/images",
        json={"owner": OWNER, "visibility": visibility, "disk_format": "raw", "container_format": "bare"},
    ).json()
    image_id = image["id"]
    client.put(f"/v2/images/{image_id}/file", content=DATA, headers={"Content-Type": "application/octet-stream"})
    if membership is not None:
        assert client.post(f"/v2/images/{image_id}/members", json={"member": OTHER}).status_code == 200
        if membership != "pending":
            changed = client.put(
                f"/v2/images/{image_id}/members/{OTHER}", json={"status": membership}, headers=_caller(OTHER, "member")
            )
            assert changed.status_code == 200
    if deactivated:
        assert client.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    return image_id


def expected(op: str, visibility: str, membership: str | None, role: str, own: bool, deactivated: bool) -> object:
    """Glance's answer, worked out from its documented rules (not from Glimpse's code)."""
    admin = role == "admin"
    member_role = role in ("admin", "member")
    sees = admin or own or visibility in ("public", "community") or (visibility == "shared" and membership is not None)
    if op == "list":  # is the image in the caller's default list?
        if admin or own:
            return visibility != "community" or own
        return visibility == "public" or (visibility == "shared" and membership == "accepted")
    if not sees:
        return 404
    if op == "show":
        return 200
    if op == "download":
        if not member_role:
            return 403
        return 403 if deactivated and not admin else 200
    if op in ("patch", "delete", "deactivate"):
        if not (admin or (own and member_role)):
            return 403
        if op == "deactivate":
            return 204
        return 200 if op == "patch" else 204
    raise AssertionError(op)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    visibility=st.sampled_from(["public", "private", "shared", "community"]),
    membership=st.sampled_from([None, "pending", "accepted", "rejected"]),
    role=st.sampled_from(["admin", "member", "reader"]),
    own=st.booleans(),
    deactivated=st.booleans(),
    op=st.sampled_from(["show", "list", "download", "patch", "delete", "deactivate"]),
)
def test_nobody_does_what_they_must_not(
    client: TestClient, visibility: str, membership: str | None, role: str, own: bool, deactivated: bool, op: str
) -> None:
    if visibility != "shared":
        membership = None  # only shared images take members
    image_id = _make_image(client, visibility, membership, deactivated)
    caller = _caller(OWNER if own else OTHER, role)
    want = expected(op, visibility, membership, role, own, deactivated)
    url = f"/v2/images/{image_id}"
    if op == "list":
        listed = client.get("/v2/images?limit=1000", headers=caller)
        assert listed.status_code == 200
        assert (image_id in [i["id"] for i in listed.json()["images"]]) is want
        return
    if op == "show":
        got = client.get(url, headers=caller).status_code
    elif op == "download":
        got = client.get(f"{url}/file", headers=caller).status_code
    elif op == "patch":
        got = client.patch(
            url, json=[{"op": "add", "path": "/note", "value": "x"}], headers={**caller, **PATCH}
        ).status_code
    elif op == "delete":
        got = client.delete(url, headers=caller).status_code
    else:
        got = client.post(f"{url}/actions/{'reactivate' if deactivated else 'deactivate'}", headers=caller).status_code
    assert got == want, (op, visibility, membership, role, own, deactivated)
    if got >= 400:  # a refused request changed nothing
        assert client.get(url).status_code == 200
        assert client.get(url).json().get("note") is None
