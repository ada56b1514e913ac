"""The /v2/metadefs API in-process: Glance's schemas, visibility, protection, policy and bad input."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.glance_install import glance_python
from tests.integration.inprocess import app_client, database, settings_for

ADMIN = {"X-Roles": "admin,member,reader", "X-Project-Id": "admins", "Accept": "application/json"}
P1 = {"X-Roles": "member,reader", "X-Project-Id": "p1", "Accept": "application/json"}
P2 = {"X-Roles": "member,reader", "X-Project-Id": "p2", "Accept": "application/json"}
NS = "/v2/metadefs/namespaces"

DUMP_GLANCE_SCHEMAS = """
import json, sys, warnings
warnings.simplefilter("ignore")
from glance.api.v2 import metadef_namespaces as n, metadef_objects as o, metadef_properties as p
from glance.api.v2 import metadef_resource_types as r, metadef_tags as t
modules = {"namespace": (n, "namespaces"), "object": (o, "objects"), "property": (p, "properties"),
           "tag": (t, "tags"), "resource_type": (r, "resource_types")}
docs = {}
for one, (module, many) in modules.items():
    docs[one] = module.get_schema().raw()
    docs[many] = module.get_collection_schema().raw()
json.dump(docs, sys.stdout)
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with database(request.param) as url:
        settings = settings_for(tmp_path_factory.mktemp("metadefs"), url, "[DEFAULT]\napi_limit_max = 50\n")
        with app_client(settings) as c:
            yield c


def _name() -> str:
    return f"OS::Test::{uuid.uuid4().hex[:10]}"


def _create(client: TestClient, body: dict[str, object], headers: dict[str, str] = ADMIN) -> dict[str, object]:
    r = client.post(NS, json=body, headers=headers)
    assert r.status_code == 201, r.text
    doc: dict[str, object] = r.json()
    return doc


def test_schemas_are_glances(client: TestClient) -> None:
    out = subprocess.run([str(glance_python()), "-c", DUMP_GLANCE_SCHEMAS], capture_output=True, text=True, check=True)
    glance = json.loads(out.stdout)
    assert len(glance) == 10
    for name, expected in glance.items():
        r = client.get(f"/v2/schemas/metadefs/{name}")
        assert r.status_code == 200
        assert r.json() == expected, name


def test_namespace_with_contents_and_prefixes(client: TestClient) -> None:
    name = _name()
    created = _create(client, {
        "namespace": name, "display_name": "Test", "visibility": "public",
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
        "properties": {"cpu": {"title": "CPU", "type": "string", "enum": ["a", "b"]}},
        "objects": [{"name": "O", "required": ["x"], "properties": {"x": {"title": "X", "type": "integer"}}}],
        "tags": [{"name": "t1"}],
    })  # fmt: skip
    assert created["owner"] == "admins" and created["self"] == f"{NS}/{name}"
    shown = client.get(f"{NS}/{name}", params={"resource_type": "OS::Glance::Image"}, headers=P2).json()
    assert list(shown["properties"]) == ["hw_cpu"]
    assert shown["objects"][0]["required"] == ["hw_x"] and list(shown["objects"][0]["properties"]) == ["hw_x"]
    assert [t["name"] for t in shown["tags"]] == ["t1"]
    prop = client.get(f"{NS}/{name}/properties/hw_cpu", params={"resource_type": "OS::Glance::Image"}, headers=P2)
    assert prop.status_code == 200 and prop.json()["name"] == "cpu"
    assert client.get(f"{NS}/{name}/properties/cpu", params={"resource_type": "OS::Glance::Image"}).status_code == 404
    listed = client.get(NS, params={"resource_types": "OS::Glance::Image", "limit": "50"}, headers=P2).json()
    assert name in [n["namespace"] for n in listed["namespaces"]]
    assert client.get(NS, params={"resource_types": "OS::Nothing"}, headers=P2).json()["namespaces"] == []
    assert "OS::Glance::Image" in [
        r["name"] for r in client.get("/v2/metadefs/resource_types").json()["resource_types"]
    ]


def test_private_namespaces_stay_in_their_project(client: TestClient) -> None:
    name = _name()
    _create(client, {"namespace": name, "owner": "p1", "visibility": "private"})
    assert client.get(f"{NS}/{name}", headers=P1).status_code == 200
    assert client.get(f"{NS}/{name}", headers=P2).status_code == 404
    assert name in [n["namespace"] for n in client.get(NS, params={"limit": "50"}, headers=P1).json()["namespaces"]]
    assert name not in [n["namespace"] for n in client.get(NS, params={"limit": "50"}, headers=P2).json()["namespaces"]]
    # a member of the owning project sees it but may not change it (403); another project learns nothing (404)
    assert client.post(f"{NS}/{name}/tags/x", headers=P1).status_code == 403
    assert client.post(f"{NS}/{name}/tags/x", headers=P2).status_code == 404
    assert client.delete(f"{NS}/{name}", headers=P2).status_code == 404


def test_reader_cannot_create(client: TestClient) -> None:
    r = client.post(NS, json={"namespace": _name()}, headers=P1)
    assert r.status_code == 403
    assert "add_metadef_namespace" in r.json()["message"]


def test_protected_namespace_and_its_contents_cannot_be_deleted(client: TestClient) -> None:
    name = _name()
    _create(client, {"namespace": name, "protected": True, "tags": [{"name": "keep"}],
                     "properties": {"p": {"title": "P", "type": "string"}}})  # fmt: skip
    for path in ("", "/tags", "/objects", "/properties", "/tags/keep", "/properties/p"):
        r = client.delete(f"{NS}/{name}{path}", headers=ADMIN)
        assert r.status_code == 403, path
        assert "is protected and cannot be deleted" in r.json()["message"]
    assert client.put(f"{NS}/{name}", json={"namespace": name, "protected": False}, headers=ADMIN).status_code == 200
    assert client.delete(f"{NS}/{name}/tags", headers=ADMIN).status_code == 204
    assert client.get(f"{NS}/{name}/tags").json()["tags"] == []
    assert client.delete(f"{NS}/{name}", headers=ADMIN).status_code == 204
    assert client.get(f"{NS}/{name}").status_code == 404


def test_objects_properties_tags_lifecycle(client: TestClient) -> None:
    name = _name()
    _create(client, {"namespace": name})
    base = f"{NS}/{name}"
    obj = client.post(f"{base}/objects", json={"name": "o", "description": "d"}, headers=ADMIN)
    assert obj.status_code == 201 and obj.json()["self"] == f"{base}/objects/o"
    assert client.post(f"{base}/objects", json={"name": "o"}, headers=ADMIN).status_code == 409
    renamed = client.put(f"{base}/objects/o", json={"name": "o2", "description": "e"}, headers=ADMIN)
    assert renamed.status_code == 200 and renamed.json()["description"] == "e"
    assert [o["name"] for o in client.get(f"{base}/objects").json()["objects"]] == ["o2"]
    prop = {"name": "speed", "title": "Speed", "type": "integer", "minimum": 1}
    assert client.post(f"{base}/properties", json=prop, headers=ADMIN).status_code == 201
    assert client.get(f"{base}/properties").json()["properties"] == {"speed": {"title": "Speed", "type": "integer",
                                                                               "minimum": 1}}  # fmt: skip
    assert client.delete(f"{base}/properties/speed", headers=ADMIN).status_code == 204
    assert client.post(f"{base}/tags", json={"tags": [{"name": "a"}, {"name": "b"}]}, headers=ADMIN).status_code == 201
    appended = client.post(f"{base}/tags", json={"tags": [{"name": "c"}]},
                           headers={**ADMIN, "X-Openstack-Append": "True"})  # fmt: skip
    assert appended.status_code == 201
    tags = client.get(f"{base}/tags", params={"sort_key": "name", "sort_dir": "asc"}).json()["tags"]
    assert [t["name"] for t in tags] == ["a", "b", "c"]
    replaced = client.post(f"{base}/tags", json={"tags": [{"name": "z"}]}, headers=ADMIN)
    assert replaced.json() == {"tags": [{"name": "z"}]}
    assert client.post(f"{base}/tags/Z", headers=ADMIN).status_code == 409  # tag names ignore case
    assert client.put(f"{base}/tags/z", json={"name": "y"}, headers=ADMIN).json()["name"] == "y"
    assoc = client.post(f"{base}/resource_types", json={"name": "OS::Nova::Flavor", "prefix": "x:"}, headers=ADMIN)
    assert assoc.status_code == 201 and assoc.json()["prefix"] == "x:"
    assert client.post(f"{base}/resource_types", json={"name": "OS::Nova::Flavor"}, headers=ADMIN).status_code == 409
    listed = client.get(f"{base}/resource_types").json()["resource_type_associations"]
    assert [a["name"] for a in listed] == ["OS::Nova::Flavor"]
    assert client.delete(f"{base}/resource_types/OS::Nova::Flavor", headers=ADMIN).status_code == 204
    assert client.delete(f"{base}/resource_types/OS::Nova::Flavor", headers=ADMIN).status_code == 404


def test_pages_follow_next_links(client: TestClient) -> None:
    mine = {"X-Roles": "member,reader", "X-Project-Id": f"pages-{uuid.uuid4().hex[:6]}", "Accept": "application/json"}
    names = {_name() for _ in range(5)}
    for n in names:
        _create(client, {"namespace": n, "owner": mine["X-Project-Id"]})
    seen: list[str] = []
    url: str | None = f"{NS}?visibility=private&limit=2&sort_key=namespace&sort_dir=asc"
    while url:
        page = client.get(url, headers=mine).json()
        assert len(page["namespaces"]) <= 2
        seen += [n["namespace"] for n in page["namespaces"]]
        url = page.get("next")
    assert seen == sorted(names)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", NS, {"namespace": ""}, 400),
        ("post", NS, {"namespace": "x" * 81}, 400),
        ("post", NS, {"name": "no namespace key"}, 400),
        ("post", NS, {"namespace": "n", "visibility": "shared"}, 400),
        ("post", NS, {"namespace": "n", "self": "/x"}, 403),
        ("post", NS, {"namespace": "n", "properties": {"p": {"title": "t"}}}, 400),
        ("post", NS, {"namespace": "n", "objects": [{"name": "o", "properties": {"p": {"type": "bogus"}}}]}, 400),
        ("post", NS, ["not", "an", "object"], 400),
        ("post", NS, {"namespace": "n", "objects": [{"description": "no name"}]}, 400),
        ("post", NS, {"namespace": "n", "resource_type_associations": [{"prefix": "x_"}]}, 400),
        (
            "post",
            NS,
            {"namespace": "n", "properties": {"p": {"title": "t", "type": "string", "description": "d" * 70000}}},
            400,
        ),
        ("get", NS + "?limit=x", None, 400),
        ("get", NS + "?limit=-1", None, 400),
        ("get", NS + "?sort_dir=up", None, 400),
        ("get", NS + "?sort_key=nonsense", None, 400),
        ("get", NS + "?visibility=community", None, 400),
        ("get", NS + "?marker=nonexistent", None, 404),
        ("get", NS + "/nonexistent", None, 404),
        ("get", NS + "/nonexistent/objects", None, 404),
        ("delete", NS + "/nonexistent/tags", None, 404),
        ("get", "/v2/schemas/metadefs/nothing", None, 404),
    ],
)
def test_bad_input_is_4xx(client: TestClient, method: str, path: str, body: object, status: int) -> None:
    r = (
        client.request(method, path, json=body, headers=ADMIN)
        if body is not None
        else client.request(method, path, headers=ADMIN)
    )
    assert r.status_code == status, r.text
    if status != 404 or "schemas" not in path:
        assert "message" in r.json()


def test_pages_by_display_name_include_those_without_one(client: TestClient) -> None:
    mine = {"X-Roles": "member,reader", "X-Project-Id": f"dn-{uuid.uuid4().hex[:6]}", "Accept": "application/json"}
    names = [_name() for _ in range(4)]
    for i, n in enumerate(names):
        body: dict[str, object] = {"namespace": n, "owner": mine["X-Project-Id"]}
        if i % 2:
            body["display_name"] = f"display {i}"
        _create(client, body)
    seen: list[str] = []
    url: str | None = f"{NS}?visibility=private&limit=1&sort_key=display_name&sort_dir=asc"
    while url:
        page = client.get(url, headers=mine).json()
        seen += [n["namespace"] for n in page["namespaces"]]
        url = page.get("next")
    assert sorted(seen) == sorted(names) and len(seen) == 4


def test_bad_bodies_on_existing_namespace(client: TestClient) -> None:
    name = _name()
    _create(client, {"namespace": name})
    base = f"{NS}/{name}"
    assert client.post(f"{base}/properties", json={"name": "p", "title": "t"}, headers=ADMIN).status_code == 400
    assert client.post(f"{base}/objects", json={"name": "o", "created_at": "x"}, headers=ADMIN).status_code == 403
    assert client.post(f"{base}/tags", json={"tags": [{"name": "a"}, {"name": "A"}]}, headers=ADMIN).status_code == 409
    assert client.post(f"{base}/tags/{'t' * 81}", headers=ADMIN).status_code == 400
    assert client.post(f"{base}/resource_types", json={"prefix": "x"}, headers=ADMIN).status_code == 400
    assert (
        client.post(f"{base}/objects", content=b"{", headers={**ADMIN, "Content-Type": "application/json"}).status_code
        == 400
    )
    assert client.put(base, json={"namespace": name, "owner": 5}, headers=ADMIN).status_code == 400
    assert client.post(f"{base}/tags", json={"tags": [{"name": "a"}, {"name": "b"}]}, headers=ADMIN).status_code == 201
    assert client.put(f"{base}/tags/a", json={"name": "B"}, headers=ADMIN).status_code == 409
    assert client.put(f"{base}/tags/a", json={"name": "A"}, headers=ADMIN).status_code == 200
    taken = _name()
    _create(client, {"namespace": taken})
    assert client.put(base, json={"namespace": taken}, headers=ADMIN).status_code == 409


def test_the_catalog_loads_glances_files(tmp_path: Path) -> None:
    from glimpse.db import metadef_files
    from glimpse.db.migrate import upgrade
    from glimpse.db.session import make_engine, make_sessionmaker
    from tests.glance_install import metadefs_dir

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    report = metadef_files.load(sessions, metadefs_dir())
    assert len(report.loaded) == len(list(metadefs_dir().glob("*.json"))) and not report.failed
