"""The metadata definitions catalog through the real clients (glance CLI, openstacksdk) against glimpse serve,
and Glance's own metadefs files through glimpse db load-metadefs / export-metadefs / unload-metadefs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx

from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer
from tests.glance_install import metadefs_dir


def _table(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("Property", "") and not line.startswith("+"):
            rows[cells[0]] = cells[1]
    return rows


def test_glance_cli_builds_and_reads_a_namespace(clients: Clients) -> None:
    ns = f"OS::Glimpse::{uuid.uuid4().hex[:8]}"
    created = _table(
        clients.glance("md-namespace-create", ns, "--visibility", "public", "--protected", "True",
                       "--display-name", "Glimpse test").stdout
    )  # fmt: skip
    assert created["namespace"] == ns and created["protected"] == "True"
    clients.glance("md-resource-type-associate", ns, "--name", "OS::Glance::Image", "--prefix", "gl_")
    schema = json.dumps({"type": "string", "title": "Bus", "enum": ["scsi", "virtio"]})
    clients.glance("md-property-create", ns, "--name", "bus", "--title", "Bus", "--type", "string", "--schema", schema)
    disk = {"description": "a disk", "properties": {"size": {"title": "Size", "type": "integer"}}}
    clients.glance("md-object-create", ns, "--name", "Disk", "--schema", json.dumps(disk))
    clients.glance("md-tag-create-multiple", ns, "--names", "fast,cheap")
    # glanceclient's --append sends the header's value as a Python bool, which its HTTP layer cannot quote
    # (against Glance too), so the appending request is made directly.
    appended = httpx.post(
        f"{clients.endpoint}/v2/metadefs/namespaces/{ns}/tags",
        json={"tags": [{"name": "small"}]},
        headers={"X-Openstack-Append": "True"},
    )
    assert appended.status_code == 201
    tags = clients.glance("md-tag-list", ns).stdout
    assert all(t in tags for t in ("fast", "cheap", "small"))
    clients.glance("md-tag-create-multiple", ns, "--names", "only")
    tags = clients.glance("md-tag-list", ns).stdout
    assert "only" in tags and "fast" not in tags

    shown = httpx.get(f"{clients.endpoint}/v2/metadefs/namespaces/{ns}?resource_type=OS::Glance::Image").json()
    assert list(shown["properties"]) == ["gl_bus"]
    assert "gl_bus" in clients.glance("md-namespace-show", ns, "--resource-type", "OS::Glance::Image").stdout
    assert ns in clients.glance("md-namespace-list", "--resource-types", "OS::Glance::Image").stdout
    assert "Disk" in clients.glance("md-object-list", ns).stdout
    assert "bus" in clients.glance("md-property-list", ns).stdout
    assert "OS::Glance::Image" in clients.glance("md-resource-type-list").stdout

    refused = clients.glance("md-namespace-delete", ns, check=False)
    assert refused.returncode != 0 and "protected" in (refused.stdout + refused.stderr)
    clients.glance("md-namespace-update", ns, "--protected", "False")
    clients.glance("md-namespace-delete", ns)
    assert httpx.get(f"{clients.endpoint}/v2/metadefs/namespaces/{ns}").status_code == 404


def test_openstacksdk_catalog(clients: Clients) -> None:
    ns = f"OS::Sdk::{uuid.uuid4().hex[:8]}"
    result = clients.sdk(f"""
ns = conn.image.create_metadef_namespace(namespace={ns!r}, visibility="public", display_name="SDK")
conn.image.create_metadef_resource_type_association(ns, name="OS::Glance::Image", prefix="sdk_")
conn.image.create_metadef_property(ns, name="color", title="Color", type="string", enum=["red", "blue"])
conn.image.create_metadef_object(ns, name="thing", description="a thing")
names = [n.namespace for n in conn.image.metadef_namespaces(resource_types="OS::Glance::Image")]
props = {{p.name: p.enum for p in conn.image.metadef_properties(ns)}}
objects = [o.name for o in conn.image.metadef_objects(ns)]
assocs = [a.name for a in conn.image.metadef_resource_type_associations(ns)]
schema = conn.image.get_metadef_namespace_schema()
conn.image.delete_metadef_namespace(ns)
print(json.dumps({{"names": names, "props": props, "objects": objects, "assocs": assocs,
                  "schema": schema.name, "after": [n.namespace for n in conn.image.metadef_namespaces()]}}))
""")
    assert ns in result["names"]
    assert result["props"] == {"color": ["red", "blue"]}
    assert result["objects"] == ["thing"] and result["assocs"] == ["OS::Glance::Image"]
    assert result["schema"] == "namespace"
    assert ns not in result["after"]


def test_private_namespace_is_its_projects_own(server: GlimpseServer) -> None:
    ns = f"OS::Private::{uuid.uuid4().hex[:8]}"
    admin = {"X-Roles": "admin", "X-Project-Id": "ops"}
    p1 = {"X-Roles": "reader,member", "X-Project-Id": "p1"}
    p2 = {"X-Roles": "reader,member", "X-Project-Id": "p2"}
    body = {"namespace": ns, "owner": "p1"}
    assert httpx.post(f"{server.url}/v2/metadefs/namespaces", json=body, headers=admin).status_code == 201
    assert httpx.get(f"{server.url}/v2/metadefs/namespaces/{ns}", headers=p1).status_code == 200
    assert httpx.get(f"{server.url}/v2/metadefs/namespaces/{ns}", headers=p2).status_code == 404
    reader = httpx.post(f"{server.url}/v2/metadefs/namespaces", json={"namespace": ns + "x"}, headers=p1)
    assert reader.status_code == 403
    bad = httpx.post(f"{server.url}/v2/metadefs/namespaces", json={"namespace": ns, "protected": "yes"}, headers=admin)
    assert bad.status_code == 400
    assert httpx.delete(f"{server.url}/v2/metadefs/namespaces/{ns}", headers=admin).status_code == 204


def test_glance_files_load_export_unload_round_trip(server: GlimpseServer, tmp_path: Path) -> None:
    source = metadefs_dir()
    files = sorted(source.glob("*.json"))
    expected = {json.loads(f.read_text())["namespace"]: json.loads(f.read_text()) for f in files}
    loaded = server.command("db", "load-metadefs", str(source))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    listed = httpx.get(f"{server.url}/v2/metadefs/namespaces?limit=1000").json()["namespaces"]
    assert set(expected) <= {n["namespace"] for n in listed}
    cpu = httpx.get(f"{server.url}/v2/metadefs/namespaces/OS::Compute::CPUPinning").json()
    assert cpu["properties"] == expected["OS::Compute::CPUPinning"]["properties"]
    assert cpu["protected"] is True

    again = server.command("db", "load-metadefs", str(source))
    assert again.returncode == 0 and "skipped" in again.stdout + again.stderr

    out = tmp_path / "export"
    exported = server.command("db", "export-metadefs", str(out))
    assert exported.returncode == 0, exported.stderr
    docs = {d["namespace"]: d for d in (json.loads(p.read_text()) for p in out.glob("*.json"))}
    assert set(expected) <= set(docs)
    for name, original in expected.items():
        doc = docs[name]
        assert doc["properties"] == original.get("properties", {}), name
        assert {t["name"] for t in doc["tags"]} == {t["name"] for t in original.get("tags", [])}, name
        assert {o["name"]: o["properties"] for o in doc["objects"]} == {
            o["name"]: o.get("properties") or {} for o in original.get("objects", [])
        }, name
        assert {a["name"]: a["prefix"] for a in doc["resource_type_associations"]} == {
            a["name"]: a.get("prefix") for a in original.get("resource_type_associations", [])
        }, name

    unloaded = server.command("db", "unload-metadefs")
    assert unloaded.returncode == 0, unloaded.stderr
    assert httpx.get(f"{server.url}/v2/metadefs/namespaces").json()["namespaces"] == []
    assert httpx.get(f"{server.url}/v2/metadefs/resource_types").json()["resource_types"] == []

    reloaded = server.command("db", "load-metadefs", str(out))
    assert reloaded.returncode == 0, reloaded.stdout
    again_cpu = httpx.get(f"{server.url}/v2/metadefs/namespaces/OS::Compute::CPUPinning").json()
    assert again_cpu["properties"] == cpu["properties"]
    merged = server.command("db", "load-metadefs", str(source), "--merge", "--overwrite")
    assert merged.returncode == 0, merged.stdout
    assert server.command("db", "load-metadefs", str(source), "--overwrite").returncode == 2
