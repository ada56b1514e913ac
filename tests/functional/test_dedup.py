"""Deduplicated storage on the file store against a real `glimpse serve`: the same image uploaded and imported by
several projects is stored once, `glimpse store usage` says so at every step, deleting the images in every order
keeps the data while one image uses it and removes it with the last; an upload of data the project can see already
writes nothing; projects get the same answers either way; `glimpse store gc` takes only what nothing references."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024
DATA = raw_disk_bytes(2 * MIB + 123)
OCTETS = {"Content-Type": "application/octet-stream"}
ADMIN = {"X-Project-Id": "admins", "X-Roles": "admin,member,reader"}
# Chosen explicitly: with direct_url shown, deduplication is otherwise off (only administrators see it while on).
CONF = (
    "show_image_direct_url = true\ndeduplicate_image_data = true\nenabled_import_methods = glance-direct,copy-image\n"
)


def project(name: str) -> dict[str, str]:
    return {"X-Project-Id": name, "X-Roles": "member,reader"}


def repr_digest(data: bytes) -> dict[str, str]:
    return {"Repr-Digest": f"sha-512=:{base64.b64encode(hashlib.sha512(data).digest()).decode()}:"}


@pytest.fixture(scope="module")
def glimpse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path_factory.mktemp("dedup"), extra_conf=CONF).start()
    yield server
    server.stop()


@pytest.fixture
def api(glimpse: GlimpseServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=glimpse.url, timeout=120) as client:
        yield client


def create(api: httpx.Client, who: dict[str, str], **body: Any) -> str:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare", **body}, headers=who)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def upload(api: httpx.Client, who: dict[str, str], data: bytes = DATA, **headers: str) -> str:
    image_id = create(api, who)
    response = api.put(f"/v2/images/{image_id}/file", content=data, headers={**OCTETS, **who, **headers})
    assert response.status_code == 204, response.text
    return image_id


def stage_and_import(api: httpx.Client, who: dict[str, str], data: bytes = DATA) -> str:
    image_id = create(api, who)
    staged = api.put(f"/v2/images/{image_id}/stage", content=data, headers={**OCTETS, **who})
    assert staged.status_code == 204, staged.text
    started = api.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}, headers=who)
    assert started.status_code == 202, started.text
    wait_for(api, image_id, who, "active")
    return image_id


def wait_for(api: httpx.Client, image_id: str, who: dict[str, str], status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        image: dict[str, Any] = api.get(f"/v2/images/{image_id}", headers=who).json()
        if image["status"] == status:
            return image
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} never became {status}: {image}")


def store_dir(api: httpx.Client, image_id: str) -> Path:
    url = api.get(f"/v2/images/{image_id}", headers=ADMIN).json()["direct_url"]
    return Path(url.removeprefix("file://")).parent


def data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def usage(glimpse: GlimpseServer) -> dict[str, Any]:
    done = glimpse.command("store", "usage", "--json")
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = {u["store"]: u for u in json.loads(done.stdout)}["file"]
    return found


def test_one_copy_for_every_project_and_every_deletion_order(glimpse: GlimpseServer, api: httpx.Client) -> None:
    size = len(DATA)
    for order in itertools.permutations(range(3)):
        base = usage(glimpse)
        tag = uuid.uuid4().hex[:6]
        owners = [project(f"{tag}-{i}") for i in range(3)]
        images = [upload(api, owners[0]), upload(api, owners[1]), stage_and_import(api, owners[2])]
        folder = store_dir(api, images[0])
        mine = [p for p in data_files(folder) if p.name in images]
        assert [p.name for p in mine] == [images[0]]  # one copy, named after the image that stored it first
        now = usage(glimpse)
        assert now["logical"] - base["logical"] == 3 * size
        assert now["physical"] - base["physical"] == size
        assert now["saved"] - base["saved"] == 2 * size
        for step, index in enumerate(order, start=1):
            assert api.delete(f"/v2/images/{images[index]}", headers=owners[index]).status_code == 204
            left = [i for i in order[step:]]
            now = usage(glimpse)
            assert now["logical"] - base["logical"] == len(left) * size
            assert now["physical"] - base["physical"] == (size if left else 0)
            for other in left:  # every image left still serves its data, whatever went before it
                got = api.get(f"/v2/images/{images[other]}/file", headers=owners[other])
                assert got.status_code == 200 and hashlib.sha512(got.content).digest() == hashlib.sha512(DATA).digest()
            assert (folder / images[0]).exists() == bool(left)
        assert usage(glimpse)["physical"] == base["physical"]


def test_projects_get_the_same_answers_and_see_no_shared_location(api: httpx.Client) -> None:
    data = raw_disk_bytes(300_000)
    first, second = project(f"first-{uuid.uuid4().hex[:6]}"), project(f"second-{uuid.uuid4().hex[:6]}")
    alone = upload(api, first, data)
    twin = upload(api, second, data)
    shown = [api.get(f"/v2/images/{i}", headers=who).json() for i, who in ((alone, first), (twin, second))]
    for image in shown:
        assert image["status"] == "active" and image["size"] == len(data)
        assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
        assert image["checksum"] == hashlib.md5(data).hexdigest()
        assert "direct_url" not in image and "locations" not in image  # not to non-admins, shared or not
    assert set(shown[0]) == set(shown[1])
    # Each project counts its image's full size.
    usages = [
        api.get("/v2/info/usage", headers=who).json()["usage"]["image_size_total"]["usage"] for who in (first, second)
    ]
    assert usages[0] == usages[1]
    admin_view = api.get(f"/v2/images/{twin}", headers=ADMIN).json()
    assert admin_view["direct_url"].endswith(alone)  # admins see where the data is: the first image's copy


def test_an_upload_of_data_the_project_has_writes_nothing(api: httpx.Client) -> None:
    data = raw_disk_bytes(4 * MIB)
    who = project(f"hit-{uuid.uuid4().hex[:6]}")
    first = upload(api, who, data)
    folder = store_dir(api, first)
    second = create(api, who)
    seen: list[list[str]] = []
    gate = threading.Event()
    names = [second]

    def slowly() -> Iterator[bytes]:
        for offset in range(0, len(data), MIB):
            yield data[offset : offset + MIB]
            if offset == 2 * MIB:
                gate.set()
                time.sleep(1)  # the upload is half-way: look at the store meanwhile
                seen.append([p.name for p in folder.iterdir() if p.name.startswith(names[0])])

    headers = {**OCTETS, **who, **repr_digest(data), "x-openstack-image-size": str(len(data))}
    response = api.put(f"/v2/images/{second}/file", content=slowly(), headers=headers)
    assert response.status_code == 204, response.text
    assert gate.is_set() and seen == [[]]  # no partial file: the bytes were received and hashed, not written
    image = api.get(f"/v2/images/{second}", headers=ADMIN).json()
    assert image["direct_url"].endswith(first) and image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    got = api.get(f"/v2/images/{second}/file", headers=who)
    assert got.content == data
    # Without a declared digest the same upload is written first (a partial file appears), then shared.
    third = create(api, who)
    names[0] = third
    seen.clear()
    gate.clear()
    response = api.put(f"/v2/images/{third}/file", content=slowly(), headers={**OCTETS, **who})
    assert response.status_code == 204 and seen and seen[0]
    assert api.get(f"/v2/images/{third}", headers=ADMIN).json()["direct_url"].endswith(first)
    assert not (folder / third).exists()


def test_a_lying_hit_upload_keeps_the_shared_data(api: httpx.Client) -> None:
    data = raw_disk_bytes(1 * MIB)
    who = project(f"liar-{uuid.uuid4().hex[:6]}")
    first = upload(api, who, data)
    folder = store_dir(api, first)
    liar = create(api, who)
    forged = {**OCTETS, **who, **repr_digest(data), "x-openstack-image-size": str(len(data))}
    other = bytearray(data)
    other[-1] ^= 1
    refused = api.put(f"/v2/images/{liar}/file", content=bytes(other), headers=forged)
    assert refused.status_code == 400 and "Repr-Digest" in refused.text
    assert api.get(f"/v2/images/{liar}", headers=who).json()["status"] == "queued"
    assert (folder / first).read_bytes() == data  # the shared data it claimed to have is untouched
    assert api.get(f"/v2/images/{first}/file", headers=who).content == data
    assert api.delete(f"/v2/images/{first}", headers=who).status_code == 204
    assert not (folder / first).exists()  # and its reference went with the refused upload: nothing leaks


def test_a_private_twin_of_another_project_is_not_taken_without_writing(api: httpx.Client) -> None:
    data = raw_disk_bytes(3 * MIB)
    owner, other = project(f"own-{uuid.uuid4().hex[:6]}"), project(f"oth-{uuid.uuid4().hex[:6]}")
    first = upload(api, owner, data)
    folder = store_dir(api, first)
    second = create(api, other)
    seen: list[bool] = []

    def slowly() -> Iterator[bytes]:
        for offset in range(0, len(data), MIB):
            yield data[offset : offset + MIB]
            if offset == MIB:
                time.sleep(0.5)
                seen.append(any(p.name.startswith(second) for p in folder.iterdir()))

    headers = {**OCTETS, **other, **repr_digest(data), "x-openstack-image-size": str(len(data))}
    assert api.put(f"/v2/images/{second}/file", content=slowly(), headers=headers).status_code == 204
    assert seen == [True]  # written like any upload: its speed tells nothing of the other project's data
    assert api.get(f"/v2/images/{second}", headers=ADMIN).json()["direct_url"].endswith(first)  # then shared


def test_gc_takes_only_unreferenced_data(glimpse: GlimpseServer, api: httpx.Client) -> None:
    who = project(f"gc-{uuid.uuid4().hex[:6]}")
    kept = upload(api, who, raw_disk_bytes(100_000))
    folder = store_dir(api, kept)
    orphan = folder / str(uuid.uuid4())
    orphan.write_bytes(b"left behind by a database restore")
    queued = create(api, who)
    leftover = folder / queued  # a crash between writing and recording, the image back in queued
    leftover.write_bytes(b"an upload that never got recorded")
    foreign = folder / "not-an-image"
    foreign.write_bytes(b"someone else's file")
    dry = glimpse.command("store", "gc")
    assert dry.returncode == 0, dry.stderr
    assert orphan.exists() and leftover.exists() and "Would remove" in dry.stdout
    applied = glimpse.command("store", "gc", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert not orphan.exists() and not leftover.exists()
    assert foreign.exists() and (folder / kept).exists()
    assert api.get(f"/v2/images/{kept}/file", headers=who).status_code == 200
    # The queued image can still be uploaded afterwards.
    response = api.put(f"/v2/images/{queued}/file", content=b"fresh", headers={**OCTETS, **who})
    assert response.status_code == 204


def test_a_server_killed_during_a_no_write_upload_leaks_no_reference(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "killed", extra_conf=CONF).start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as api:
            data = raw_disk_bytes(2 * MIB)
            who = project("killed")
            first = upload(api, who, data)
            folder = store_dir(api, first)
            second = create(api, who)
            halfway = threading.Event()

            def endless() -> Iterator[bytes]:
                yield data[:MIB]
                halfway.set()
                time.sleep(60)  # the server dies meanwhile
                yield data[MIB:]

            headers = {**OCTETS, **who, **repr_digest(data), "x-openstack-image-size": str(len(data))}

            def send() -> None:
                with pytest.raises(httpx.HTTPError):  # the server died under it
                    api.put(f"/v2/images/{second}/file", content=endless(), headers=headers)

            sender = threading.Thread(target=send)
            sender.start()
            assert halfway.wait(60)
            time.sleep(1)
            server.kill()
            sender.join(120)
        server.start()  # recovery puts the upload back to queued and lets its pin go
        with httpx.Client(base_url=server.url, timeout=120) as api:
            assert api.get(f"/v2/images/{second}", headers=who).json()["status"] == "queued"
            assert api.get(f"/v2/images/{first}/file", headers=who).content == data
            assert api.delete(f"/v2/images/{first}", headers=who).status_code == 204
            assert not (folder / first).exists()  # the dead upload's reference did not keep the data
            assert api.put(f"/v2/images/{second}/file", content=data, headers={**OCTETS, **who}).status_code == 204
    finally:
        server.stop()


def test_copies_store_deletes_and_migration_share_per_store(tmp_path: Path) -> None:
    conf = (
        "show_image_direct_url = true\ndeduplicate_image_data = true\nenabled_backends = one:file, two:file\n"
        "[glance_store]\ndefault_backend = one\n"
        f"[one]\nfilesystem_store_datadir = {tmp_path / 'one'}\n"
        f"[two]\nfilesystem_store_datadir = {tmp_path / 'two'}\n"
    )
    server = GlimpseServer(tmp_path / "srv", extra_conf=conf).start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as api:
            data = raw_disk_bytes(1 * MIB + 5)
            owners = [project("copy-a"), project("copy-b"), project("copy-c")]
            first, second, third = (upload(api, who, data) for who in owners)

            def in_two() -> list[str]:
                return [p.name for p in data_files(tmp_path / "two")]

            def copied(image_id: str) -> None:  # an admin's copy-image, as Glance lets admins copy any image
                started = api.post(
                    f"/v2/images/{image_id}/import",
                    json={"method": {"name": "copy-image"}, "stores": ["two"]},
                    headers=ADMIN,
                )
                assert started.status_code == 202, started.text
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    shown = api.get(f"/v2/images/{image_id}", headers=ADMIN).json()
                    if shown.get("os_glance_importing_to_stores") == "" and "two" in shown["stores"]:
                        return
                    time.sleep(0.2)
                raise AssertionError(f"copy of {image_id} did not finish")

            def usage_of(store: str) -> dict[str, Any]:
                done = server.command("store", "usage", "--json")
                assert done.returncode == 0, done.stderr
                found: dict[str, Any] = {u["store"]: u for u in json.loads(done.stdout)}[store]
                return found

            copied(first)
            copied(second)
            assert len(in_two()) == 1  # the second copy found the first one's data in store two
            assert usage_of("two")["logical"] == 2 * len(data) and usage_of("two")["physical"] == len(data)
            assert usage_of("one")["physical"] == len(data) and usage_of("one")["copies"] == 3
            # Dropping the first image's copy in two keeps the data the second one still uses there.
            assert api.delete(f"/v2/stores/two/{first}", headers=ADMIN).status_code == 204
            assert len(in_two()) == 1
            assert api.get(f"/v2/images/{second}/file", headers=owners[1]).content == data
            # Migrating the third image into two links it to the data there, and --delete-source only drops its
            # reference in one (the others still use that data).
            migrated = server.command("store", "migrate", "--from", "one", "--to", "two", "--delete-source")
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr
            assert len(in_two()) == 1 and data_files(tmp_path / "one") == []
            assert usage_of("two")["copies"] == 3 and usage_of("two")["physical"] == len(data)
            for image_id, who in zip((first, second, third), owners, strict=True):
                assert api.get(f"/v2/images/{image_id}/file", headers=who).content == data
                assert api.delete(f"/v2/images/{image_id}", headers=who).status_code == 204
            assert in_two() == [] and data_files(tmp_path / "one") == []
    finally:
        server.stop()
