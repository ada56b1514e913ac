"""Every ```sh block of the README, run by a test exactly as printed, or listed here with the reason it is not.

The tour, its curl line, the sharing and quota blocks run in one scratch folder against a fresh `glimpse serve`
on the embedded default (127.0.0.1:9292, as the README says), with the reader's PATH: `.venv/bin` for
glimpse, `.venv-clients/bin` as the tour exports it. The database and store blocks run on a fresh MariaDB
database and a real S3 server (moto_server), with the README's own ```ini blocks as the configuration.
Each command's exit status is checked, and what the README says happens (refused, identical, pending,
listed) is checked too. ```ini blocks are configuration, never run."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.fixtures import s3_server  # noqa: F401  (a real S3 server, once per run)
from tests.contract.servers import ACCESS_KEY, SECRET_KEY, S3Server
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import CLIENTS_VENV
from tests.functional.databases import fresh_database
from tests.functional.readme import ROOT, Block, Result, Shell, ini_block_after, one_block, sh_blocks, stop, wait_for
from tests.functional.server import free_port

TOUR_URL = "http://127.0.0.1:9292"  # the README's address

# Blocks (by their first command) run by the tests below.
RUN = (
    "python3 -m venv .venv-clients",  # the tour (its first command: see NOT_RUN_COMMANDS)
    "curl -s -H 'X-Project-Id: demo'",  # the no-auth headers
    "openstack image create --disk-format raw --container-format bare --file disk.raw --shared",  # sharing
    "glimpse quota set demo",
    "glimpse store migrate",
    "glimpse db sync --config-file glance-api.conf",  # MariaDB or PostgreSQL
    "head -c 64M /dev/urandom > big.raw",  # glimpse image upload
)

# Blocks not run here, each with the reason.
NOT_RUN = {
    "openssl req -x509 -newkey rsa:4096": (
        "needs Barbican and the openstack secret commands (python-barbicanclient's plugin, not in the clients' lock);"
        " test_signed_images.py signs images with openssl dgst in the same way and stores the certificate in a real"
        " Barbican through castellan"
    ),
    "python3 -m venv .venv && .venv/bin/pip install --no-compile --require-hashes -r requirements/glimpse.lock": (
        "the install-and-serve command: tests/functional/test_readme_install.py runs it as printed in a copy"
    ),
    "bash scripts/test": "runs the whole suite, this test included",
    ".venv/bin/pip install --require-hashes -r requirements/test.lock": (
        "installing and re-locking: scripts/test runs the first line on every run; the others change the"
        " environment or the lock files from PyPI, which a test must not"
    ),
    "glimpse serve --config-file /etc/glance/glance-api.conf": (
        "a deployment's path; `glimpse serve --config-file glance-api.conf` runs in the MariaDB block"
    ),
    "glimpse db load-metadefs /etc/glance/metadefs": (
        "a deployment's folder and a synopsis (DIR, [--prefer-new | --overwrite]); test_metadefs.py runs"
        " load-, export- and unload-metadefs on Glance's own files"
    ),
    "touch /var/lib/glimpse/healthcheck_disable": (
        "a deployment's path; test_drain.py drains a node behind HAProxy with its disable file and puts it back"
    ),
    "glimpse status --config-file /etc/glance/glance-api.conf": (
        "a deployment's configuration and another host; test_metrics.py runs glimpse status (--json, --url) on a"
        " running node"
    ),
    "glimpse scrub --config-file glance-api.conf": (
        "needs images deleted under delayed_delete; test_scrub.py runs glimpse scrub once, racing, killed and"
        " with --restore against a real server"
    ),
    "curl -X PUT -H 'Content-Type: application/json' -d '{\"retention_period\": 86400}'": (
        "needs images in a recycle bin (IMAGE_ID); test_lifecycle.py runs these endpoints and glimpse bin list,"
        " restore and retention against real servers"
    ),
    "glimpse db backup /backups/": (
        "a deployment's path; test_backup.py runs db backup during writes, db restore and store verify"
    ),
    "mysqldump --single-transaction": "the databases' own tools, on a deployment's database named glance",
    "glimpse retention create --family ubuntu": (
        "a deployment's configuration and IMAGE_ID; test_retention.py runs retention create, list, run --dry-run,"
        " run and delete against a real server, test_audit.py reads the log those commands write"
    ),
    "glimpse db import-glance --from mysql+pymysql://glance:secret@db/glance": (
        "needs a Glance database at host `db`; test_glance_import.py runs import-glance (--dry-run, --verify,"
        " --sample) on a real Glance's MariaDB, PostgreSQL and SQLite databases"
    ),
}

# The tour's one command not run: the install of the clients, which scripts/test runs on every run (with -q).
# The scratch folder gets the suite's .venv-clients, made by that install.
NOT_RUN_COMMANDS = {
    "python3 -m venv .venv-clients && .venv-clients/bin/pip install --require-hashes -r requirements/clients.lock": (
        "python3 -m venv .venv-clients",
        ".venv-clients/bin/pip install -q --require-hashes -r requirements/clients.lock",
    )
}

Check = Callable[[Result], None]


def ok(result: Result) -> None:
    assert result.returncode == 0, str(result)


def says(*fragments: str) -> Check:
    def check(result: Result) -> None:
        ok(result)
        for fragment in fragments:
            assert fragment in result.stdout, f"{fragment!r} not in the output of:\n{result}"

    return check


def refused_protected(result: Result) -> None:
    assert result.returncode != 0, f"the protected image was deleted:\n{result}"
    assert "is protected" in result.stdout + result.stderr, str(result)


def image_status(name: str) -> str | None:
    images = httpx.get(f"{TOUR_URL}/v2/images", params={"name": name}, timeout=30).json()["images"]
    return images[0]["status"] if images else None


def then(check: Check, after: Callable[[], None]) -> Check:
    def both(result: Result) -> None:
        check(result)
        after()

    return both


def status_is(name: str, status: str | None) -> Callable[[], None]:
    def after() -> None:
        assert image_status(name) == status

    return after


def json_listing(*names: str, absent: tuple[str, ...] = ()) -> Check:
    def check(result: Result) -> None:
        ok(result)
        listed = {image["name"] for image in json.loads(result.stdout)["images"]}
        assert set(names) <= listed and not set(absent) & listed, str(result)

    return check


# What the README says each command does, by a fragment found in exactly one command of its block.
TOUR_CHECKS: dict[str, Check] = {
    "head -c 20M /dev/urandom > disk.raw": ok,
    "--tag golden ubuntu-24.04": then(ok, status_is("ubuntu-24.04", "active")),
    "openstack image list --long": says("ubuntu-24.04", "golden"),
    "openstack image list --property os_distro=ubuntu": says("ubuntu-24.04"),
    "openstack image show ubuntu-24.04": says("os_distro", "ubuntu", "24.04"),
    "--min-disk 10 --protected ubuntu-24.04": says(),
    "# refused: the image is protected": then(refused_protected, status_is("ubuntu-24.04", "active")),
    "--unprotected ubuntu-24.04": ok,
    "--deactivate ubuntu-24.04": then(ok, status_is("ubuntu-24.04", "deactivated")),
    "--activate ubuntu-24.04": then(ok, status_is("ubuntu-24.04", "active")),
    "&& echo identical": says("identical"),
    "glance --os-auth-type password": says("ubuntu-24.04"),
}
TOUR_LAST = "openstack image delete ubuntu-24.04"  # exactly that: the image is gone

SHARING_CHECKS: dict[str, Check] = {
    "--shared shared-image": then(ok, status_is("shared-image", "active")),
    "IMAGE=$(openstack image show": ok,
    "member-create $IMAGE demo": says("demo", "pending"),
    '{"status": "accepted"}': says('"status":"accepted"'),
    "# lists shared-image now": json_listing("shared-image"),
}

QUOTA_CHECKS: dict[str, Check] = {
    "glimpse quota set demo": says("100", "512000 MiB", "4"),
    "glimpse quota show demo": says("100", "512000 MiB", "image_count_uploading"),
    "glimpse quota list": says("demo", "512000"),
}


UPLOAD_CHECKS: dict[str, Check] = {
    "glimpse image upload big.raw": says("id: ", "checksum: ", "os_hash_algo: sha512"),
}


def run_block(shell: Shell, block: Block, checks: dict[str, Check], skip: tuple[str, ...] = ()) -> None:
    """Run every command of the block but those in `skip`; each one a check names is checked by it, the others
    must succeed. Every check must name exactly one command, so a README edit cannot leave one unused."""
    commands = block.commands
    for fragment in checks:
        matching = [c for c in commands if fragment in c]
        assert len(matching) == 1, f"{fragment!r} is in {len(matching)} commands of the block at line {block.line}"
    for command in commands:
        if command in skip:
            continue
        result = shell.run(command)
        for fragment, check in checks.items():
            if fragment in command:
                check(result)
                break
        else:
            ok(result)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def reader_env(home: Path) -> dict[str, str]:
    """The reader's environment: no OS_* variables of this machine, glimpse on PATH (README: .venv/bin)."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k not in drop}
    env["HOME"] = str(home)  # glanceclient caches schemas under ~/.glanceclient
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    home.mkdir(parents=True, exist_ok=True)
    return env


def test_every_sh_block_is_run_here_or_listed_with_its_reason() -> None:
    blocks = sh_blocks()
    for block in blocks:
        run = [prefix for prefix in RUN if block.first.startswith(prefix)]
        listed = [prefix for prefix in NOT_RUN if block.first.startswith(prefix)]
        assert len(run) + len(listed) == 1, (
            f"README line {block.line} ({block.heading}): a ```sh block neither run by tests/functional/test_readme.py"
            f" nor listed there with a reason (```ini is for configuration):\n{block.text}"
        )
    for prefix in (*RUN, *NOT_RUN):
        assert one_block(blocks, prefix)
    # The one tour command not run here is what scripts/test runs on every run.
    script = (ROOT / "scripts" / "test").read_text()
    for command, lines in NOT_RUN_COMMANDS.items():
        assert command in one_block(blocks, RUN[0]).commands
        for line in lines:
            assert re.search(rf"^{re.escape(line)}$", script, flags=re.M), f"scripts/test no longer runs {line!r}"


def test_the_block_parser_keeps_commands_verbatim() -> None:
    text = "```sh\n# comment\na --x \\\n    --y   # note\n\nb\n```\n```ini\n[x]\n```\n"
    (block,) = sh_blocks(text)
    assert block.commands == ["a --x \\\n    --y   # note", "b"]


# ```ini blocks outside this test's part of the README that still carry a comment after a value.
INLINE_COMMENTS_LEFT: dict[str, str] = {}  # heading -> why its block still has a comment after a value


def test_ini_blocks_put_comments_on_their_own_lines() -> None:
    """oslo.config reads `key = value   # note` as the value `value   # note` (an s3 store's
    large_object_size then fails to start the service), so a comment has its own line."""
    pattern = re.compile(r"^#+ (.*?)$|^```(\w*)\n(.*?)^```$", flags=re.M | re.S)
    heading = ""
    offenders = []
    for match in pattern.finditer((ROOT / "README.md").read_text()):
        if match.group(1) is not None:
            heading = match.group(1).strip()
        elif match.group(2) == "ini":
            lines = [line for line in match.group(3).splitlines() if re.match(r"^\w+ = .*\s#", line)]
            if lines and heading not in INLINE_COMMENTS_LEFT:
                offenders.append((heading, lines))
            assert bool(lines) or heading not in INLINE_COMMENTS_LEFT, f"{heading} is fixed: drop it from the list"
    assert not offenders, offenders


@pytest.fixture
def tour(tmp_path: Path) -> Iterator[Shell]:
    """A reader's folder with `glimpse serve` (the embedded default) running in it on 127.0.0.1:9292."""
    assert port_free(9292), "127.0.0.1:9292 is taken: the README's tour talks to that address"
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / ".venv-clients").symlink_to(CLIENTS_VENV)  # what the tour's first command makes
    shell = Shell(folder, reader_env(tmp_path / "home"), tmp_path / "env.state")
    log = tmp_path / "serve.log"
    server = shell.start("glimpse serve", log)
    try:
        wait_for(TOUR_URL, server, log)
        yield shell
    finally:
        stop(server)


def test_the_tour_sharing_and_quota_blocks_as_printed(tour: Shell) -> None:
    blocks = sh_blocks()
    tour_block = one_block(blocks, RUN[0])
    run_block(tour, tour_block, {**TOUR_CHECKS}, skip=tuple(NOT_RUN_COMMANDS))
    # The tour leaves the environment it exported: the clients' PATH and no Keystone.
    assert tour.env["OS_AUTH_TYPE"] == "none" and tour.env["PATH"].startswith(f"{tour.cwd}/.venv-clients/bin:")
    assert tour_block.commands[-1] == TOUR_LAST and image_status("ubuntu-24.04") is None
    assert (tour.cwd / "disk.raw").stat().st_size == 20 * 1024 * 1024

    (headers,) = one_block(blocks, RUN[1]).commands
    json_listing(absent=("ubuntu-24.04",))(tour.run(headers))

    run_block(tour, one_block(blocks, RUN[2]), SHARING_CHECKS)
    # Without Keystone the commands the Sharing section names for Keystone fail, as it says.
    assert tour.run("openstack image add project shared-image demo").returncode != 0
    assert tour.run("openstack image set --accept shared-image").returncode != 0

    run_block(tour, one_block(blocks, RUN[3]), QUOTA_CHECKS)
    usage = httpx.get(f"{TOUR_URL}/v2/info/usage", headers={"X-Project-Id": "demo", "X-Roles": "reader"}, timeout=30)
    assert usage.json()["usage"]["image_count_total"]["limit"] == 100

    run_block(tour, one_block(blocks, RUN[6]), UPLOAD_CHECKS)
    big = httpx.get(f"{TOUR_URL}/v2/images", params={"name": "big"}, timeout=30).json()["images"]
    assert [(i["status"], i["size"], i["os_distro"]) for i in big] == [("active", 64 * 1024 * 1024, "debian")]


def readme_config(s3: S3Server, database_url: str, folder: Path, port: int) -> str:
    """The README's multi-store and database ```ini blocks, pointed at this machine's S3 server, MariaDB and
    a folder of the test's."""
    stores = ini_block_after("Stores", "[DEFAULT]\nenabled_backends = fast:s3")
    replacements = {
        r"(?m)^s3_store_host = \S+": f"s3_store_host = {s3.url}\ns3_store_bucket_url_format = path",
        r"(?m)^s3_store_access_key = \.\.\.": f"s3_store_access_key = {ACCESS_KEY}",
        r"(?m)^s3_store_secret_key = \.\.\.": f"s3_store_secret_key = {SECRET_KEY}",
        r"(?m)^s3_store_bucket = images": f"s3_store_bucket = readme-{uuid.uuid4().hex[:12]}",
        r"(?m)^filesystem_store_datadir = /srv/images": f"filesystem_store_datadir = {folder / 'images'}",
        r"(?m)^\[DEFAULT\]\n": f"[DEFAULT]\nbind_port = {port}\ndata_dir = {folder / 'data'}\n",
    }
    for pattern, value in replacements.items():
        stores, count = re.subn(pattern, value.replace("\\", "\\\\"), stores)
        assert count == 1, f"the README's store configuration no longer has {pattern!r}"
    database = ini_block_after("MariaDB or PostgreSQL", "[database]")
    database, count = re.subn(r"mysql\+pymysql://\S+", database_url, database)
    assert count == 1
    return f"{stores}\n{database}"


def test_the_database_and_store_blocks_as_printed(s3_server: S3Server, tmp_path: Path) -> None:  # noqa: F811
    blocks = sh_blocks()
    folder = tmp_path / "deployment"
    folder.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    shell = Shell(folder, reader_env(tmp_path / "home"), tmp_path / "env.state")
    with fresh_database("mysql") as database_url:
        (folder / "glance-api.conf").write_text(readme_config(s3_server, database_url, folder, port))
        sync, version, serve = one_block(blocks, RUN[5]).commands
        ok(shell.run(sync))
        revision = shell.run(version)
        ok(revision)
        # the newest migration, the one sync went to
        newest = max(p.name.split("_")[0] for p in (ROOT / "glimpse/db/migrations/versions").glob("[0-9]*_*.py"))
        assert revision.stdout.strip() == newest, str(revision)
        log = tmp_path / "serve.log"
        server = shell.start(serve, log)
        try:
            wait_for(url, server, log)
            data = raw_disk_bytes(3 * 1024 * 1024)
            with httpx.Client(base_url=url, timeout=60) as client:
                body = {"name": "to-migrate", "disk_format": "raw", "container_format": "bare"}
                image = client.post("/v2/images", json=body).json()["id"]
                put = client.put(
                    f"/v2/images/{image}/file", content=data, headers={"Content-Type": "application/octet-stream"}
                )
                assert put.status_code == 204, put.text
                assert client.get(f"/v2/images/{image}").json()["stores"] == "reliable"

                migrate, verify, usage, gc = one_block(blocks, RUN[4]).commands
                ok(shell.run(migrate))
                assert client.get(f"/v2/images/{image}").json()["stores"] == "fast"
                ok(shell.run(verify))
                assert client.get(f"/v2/images/{image}/file").content == data
                says("fast", str(len(data)))(shell.run(usage))
                says("Would remove 0")(shell.run(gc))  # a dry run: the migrated image's data is referenced
        finally:
            stop(server)
