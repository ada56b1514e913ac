"""openstacksdk against glimpse serve: the library Nova-side tools and scripts use."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients


def test_sdk_create_upload_find_update_download_delete(clients: Clients, tmp_path: Path) -> None:
    data = raw_disk_bytes(1024 * 1024 + 3)
    source = tmp_path / "snap.raw"
    source.write_bytes(data)
    result = clients.sdk(
        f"""
image = conn.image.create_image(name='sdk-snap', filename={str(source)!r}, disk_format='raw',
                                container_format='bare', image_type='snapshot', instance_uuid='i-1',
                                base_image_ref='b-1', wait=True)
found = conn.image.find_image('sdk-snap')
conn.image.update_image(found, min_ram=256, os_distro='fedora')
again = conn.image.get_image(found.id)
snapshots = [i.id for i in conn.image.images(image_type='snapshot')]
body = conn.image.download_image(again).content
conn.image.add_tag(again, 'sdk')
tags = conn.image.get_image(again.id).tags
conn.image.delete_image(again)
gone = conn.image.find_image(again.id, ignore_missing=True)
print(json.dumps({{'id': found.id, 'status': again.status, 'min_ram': again.min_ram,
                   'os_distro': again.os_distro, 'snapshots': snapshots,
                   'md5': __import__('hashlib').md5(body).hexdigest(),
                   'checksum': again.checksum, 'hash': again.hash_value, 'tags': tags, 'gone': gone is None}}))
"""
    )
    assert result["status"] == "active"
    assert result["min_ram"] == 256
    assert result["os_distro"] == "fedora"
    assert result["id"] in result["snapshots"]
    assert result["md5"] == hashlib.md5(data).hexdigest() == result["checksum"]
    assert result["hash"] == hashlib.sha512(data).hexdigest()
    assert result["tags"] == ["sdk"]
    assert result["gone"] is True
