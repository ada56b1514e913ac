"""Sharing between projects through image members, with the project given by headers (no-auth mode)."""

from __future__ import annotations

import uuid

import httpx

from tests.functional.server import GlimpseServer


def _as(project: str, *roles: str) -> dict[str, str]:
    return {"X-Project-Id": project, "X-Roles": ",".join(roles or ("member",))}


def test_share_accept_reject_and_lists(server: GlimpseServer) -> None:
    p1, p2, p3 = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("prj1", "prj2", "prj3"))
    api = httpx.Client(base_url=server.url, timeout=30)
    image = api.post("/v2/images", json={"name": "shared-one", "visibility": "shared"}, headers=_as(p1)).json()
    url = f"/v2/images/{image['id']}"

    # Not shared yet: invisible to the other projects.
    assert api.get(url, headers=_as(p2)).status_code == 404
    added = api.post(f"{url}/members", json={"member": p2}, headers=_as(p1))
    assert added.status_code == 200, added.text
    assert added.json()["status"] == "pending" and added.json()["member_id"] == p2
    assert api.post(f"{url}/members", json={"member": p2}, headers=_as(p1)).status_code == 409

    # A member sees the image at once, but lists it only once accepted.
    assert api.get(url, headers=_as(p2)).status_code == 200
    default_list = [i["id"] for i in api.get("/v2/images", headers=_as(p2)).json()["images"]]
    assert image["id"] not in default_list
    pending = api.get("/v2/images?member_status=pending&visibility=shared", headers=_as(p2)).json()["images"]
    assert [i["id"] for i in pending] == [image["id"]]

    # Only the member changes its status; the owner cannot accept on its behalf.
    assert api.put(f"{url}/members/{p2}", json={"status": "accepted"}, headers=_as(p1)).status_code == 403
    accepted = api.put(f"{url}/members/{p2}", json={"status": "accepted"}, headers=_as(p2))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert image["id"] in [i["id"] for i in api.get("/v2/images", headers=_as(p2)).json()["images"]]
    assert api.put(f"{url}/members/{p2}", json={"status": "maybe"}, headers=_as(p2)).status_code == 400

    # The owner sees every member; the member sees itself; a stranger sees nothing at all.
    assert [m["member_id"] for m in api.get(f"{url}/members", headers=_as(p1)).json()["members"]] == [p2]
    assert [m["member_id"] for m in api.get(f"{url}/members", headers=_as(p2)).json()["members"]] == [p2]
    assert api.get(f"{url}/members", headers=_as(p3)).status_code == 404
    assert api.get(url, headers=_as(p3)).status_code == 404
    assert image["id"] not in [i["id"] for i in api.get("/v2/images", headers=_as(p3)).json()["images"]]

    # Members may read but not change or delete the image, and may not add members.
    assert api.delete(url, headers=_as(p2)).status_code == 403
    patch = {"Content-Type": "application/openstack-images-v2.1-json-patch", **_as(p2)}
    assert api.patch(url, json=[{"op": "replace", "path": "/name", "value": "x"}], headers=patch).status_code == 403
    assert api.post(f"{url}/members", json={"member": p3}, headers=_as(p2)).status_code == 403

    rejected = api.put(f"{url}/members/{p2}", json={"status": "rejected"}, headers=_as(p2))
    assert rejected.json()["status"] == "rejected"
    assert image["id"] not in [i["id"] for i in api.get("/v2/images", headers=_as(p2)).json()["images"]]
    assert api.get(url, headers=_as(p2)).status_code == 200  # still readable: rejected only hides it

    assert api.delete(f"{url}/members/{p2}", headers=_as(p1)).status_code == 204
    assert api.get(url, headers=_as(p2)).status_code == 404
    assert api.delete(f"{url}/members/{p2}", headers=_as(p1)).status_code == 404


def test_only_shared_images_take_members_and_readers_change_nothing(server: GlimpseServer) -> None:
    owner = f"own-{uuid.uuid4().hex[:6]}"
    api = httpx.Client(base_url=server.url, timeout=30)
    private = api.post("/v2/images", json={"visibility": "private"}, headers=_as(owner)).json()
    refused = api.post(f"/v2/images/{private['id']}/members", json={"member": "x"}, headers=_as(owner))
    assert refused.status_code == 403
    reader = _as(owner, "reader")
    assert api.get(f"/v2/images/{private['id']}", headers=reader).status_code == 200
    assert api.post("/v2/images", json={"name": "r"}, headers=reader).status_code == 403
    assert api.delete(f"/v2/images/{private['id']}", headers=reader).status_code == 403
    community = api.post("/v2/images", json={"visibility": "community"}, headers=_as(owner))
    assert community.status_code == 201  # project members may publish community images
    assert api.post("/v2/images", json={"visibility": "public"}, headers=_as(owner)).status_code == 403
