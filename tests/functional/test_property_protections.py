"""Property protections with the real clients behind a real Keystone: Glance's roles sample file, project
members and admins using `openstack`, `glance` and openstacksdk against a `glimpse serve` process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer
from tests.glance_install import protection_samples
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf, openstack_env, register_image_service

SDK = "import json, openstack\nconn = openstack.connect()\n"


@pytest.fixture(scope="module")
def protected(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlimpseServer]:
    rules = protection_samples()["property-protections-roles.conf.sample"]  # [^x_.*] members, [.*] admins
    conf = f"property_protection_file = {rules}\nproperty_protection_rule_format = roles\n"
    conf += "[paste_deploy]\nflavor = keystone\n" + authtoken_conf(keystone_server)
    server = GlimpseServer(tmp_path_factory.mktemp("glimpse-protected"), extra_conf=conf).start()
    register_image_service(keystone_server, server.url)
    yield server
    server.stop()


def as_user(ks: KeystoneServer, projects: dict[str, Any], user: str, home: Path, url: str) -> Clients:
    info = projects["users"][user]
    return Clients(url, home / user, openstack_env(ks, user, info["project"], info["password"]))


def sdk(clients: Clients, script: str) -> Any:
    return json.loads(clients.run("python", "-c", SDK + script).stdout)


def test_members_and_admins_with_the_real_clients(
    protected: GlimpseServer, keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    member = as_user(keystone_server, keystone_projects, "Prj1-member", tmp_path, protected.url)
    admin = as_user(keystone_server, keystone_projects, "Prj1-admin", tmp_path, protected.url)
    name = f"pp-{uuid.uuid4().hex[:6]}"

    refused = member.openstack("image", "create", "--property", "hw_disk_bus=scsi", name, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr and "hw_disk_bus" in refused.stderr
    # openstackclient (through openstacksdk) also sets owner_specified.openstack.* properties, which the sample
    # leaves to admins ([.*]): as on Glance, a member needs a file that grants them, or another client.
    sdk_made = member.openstack("image", "create", "--property", "x_team=blue", name, check=False)
    assert sdk_made.returncode != 0 and "owner_specified.openstack" in sdk_made.stderr
    made = member.glance("image-create", "--name", name, "--property", "x_team=blue", "--disk-format", "raw",
                         "--container-format", "bare")  # fmt: skip
    mine = member.openstack_json("image", "show", made.stdout.split("| id ")[1].split("|")[1].strip())
    assert mine["properties"]["x_team"] == "blue"

    tuned = admin.openstack_json("image", "create", "--property", "hw_disk_bus=scsi", "--property", "x_team=red", name)
    image_id = tuned["id"]
    shown = member.openstack_json("image", "show", image_id)
    assert shown["properties"].get("x_team") == "red" and "hw_disk_bus" not in shown["properties"]
    assert admin.openstack_json("image", "show", image_id)["properties"]["hw_disk_bus"] == "scsi"

    # A filter on what the member cannot read finds nothing; the admin's finds the image.
    assert member.openstack_json("image", "list", "--property", "hw_disk_bus=scsi") == []
    assert image_id in [i["ID"] for i in admin.openstack_json("image", "list", "--property", "hw_disk_bus=scsi")]

    # The member changes what it may; what it cannot see survives; what it cannot create is refused.
    member.openstack("image", "set", "--name", f"{name}-renamed", "--property", "x_team=green", image_id)
    overwrite = member.openstack("image", "set", "--property", "hw_disk_bus=virtio", image_id, check=False)
    assert overwrite.returncode != 0 and "403" in overwrite.stderr
    member.openstack("image", "unset", "--property", "hw_disk_bus", image_id, check=False)  # it sees none: a no-op
    after = admin.openstack_json("image", "show", image_id)
    assert (after["name"], after["properties"]["x_team"], after["properties"]["hw_disk_bus"]) == (
        f"{name}-renamed", "green", "scsi",
    )  # fmt: skip

    # glanceclient (JSON-patch computed from what it was shown) and openstacksdk see the same image.
    member.glance("image-update", "--property", "x_size=small", image_id)
    assert "hw_disk_bus" not in member.glance("image-show", image_id).stdout
    # openstacksdk keeps well-known properties (hw_*) as attributes of its Image, the others in .properties.
    show = "print(json.dumps({'props': i.properties, 'bus': i.hw_disk_bus, 'vif': i.hw_vif_model}))"
    got = sdk(member, f"i = conn.image.get_image({image_id!r})\n{show}")
    assert got["props"].get("x_size") == "small" and got["bus"] is None
    updated = sdk(admin, f"i = conn.image.update_image({image_id!r}, hw_vif_model='e1000')\n{show}")
    assert (updated["vif"], updated["bus"]) == ("e1000", "scsi")
    sdk_refused = member.run(
        "python", "-c", SDK + f"conn.image.update_image({image_id!r}, hw_vif_model='virtio')", check=False
    )
    assert sdk_refused.returncode != 0 and "403" in sdk_refused.stderr
    assert admin.openstack_json("image", "show", image_id)["properties"]["hw_vif_model"] == "e1000"
    admin.openstack("image", "delete", image_id, mine["id"])


def test_a_wrong_protection_file_stops_glimpse_serve(tmp_path: Path) -> None:
    (tmp_path / "protect.conf").write_text("[^x_.*]\ncreate = admin,!,@\nread = @\nupdate = @\ndelete = @\n")
    server = GlimpseServer(tmp_path, extra_conf=f"property_protection_file = {tmp_path / 'protect.conf'}\n")
    with pytest.raises(RuntimeError) as caught:
        server.start()
    assert "'@' (everyone) and '!' (nobody) exclude each other" in str(caught.value)
    assert "Traceback" not in str(caught.value)
