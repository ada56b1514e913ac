"""Tempest's image API tests (tempest.api.image) against a real `glimpse serve` behind the real Keystone.

The run's expectations are committed in tests/conformance/tempest-expected.txt: no test that runs may fail, at least
`baseline-passed` must pass, every test Tempest skips must be listed there with its reason, and tests of features
Glimpse does not have yet are excluded from the run by name, with the reason.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.tempest_run import (
    Expected,
    FileServer,
    Outcome,
    glimpse_conf,
    install_tempest,
    run_tempest,
    tempest_conf,
)
from tests.functional.server import GlimpseServer
from tests.glance_install import metadefs_dir
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf, register_image_service, unregister_image_service


@pytest.fixture(scope="module")
def images_to_fetch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    """Tempest's http_image and http_qcow2_image, served from 127.0.0.1: small real qcow2 images."""
    folder = tmp_path_factory.mktemp("tempest-images")
    for name, size in (("cirros.img", "2M"), ("cirros.qcow2", "1M")):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(folder / name), size], check=True, timeout=60)
    server = FileServer(folder).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def glimpse_for_tempest(
    keystone_server: KeystoneServer,
    keystone_projects: dict[str, Any],
    images_to_fetch: FileServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GlimpseServer]:
    workdir = tmp_path_factory.mktemp("glimpse-tempest")
    conf = glimpse_conf(authtoken_conf(keystone_server), images_to_fetch.port, workdir / "image-cache")
    server = GlimpseServer(workdir, extra_conf=conf).start()
    # Tempest's metadefs tests read the catalog's resource types: load Glance's own definitions, as an
    # operator does with `glance-manage db load_metadefs`.
    loaded = server.command("db", "load-metadefs", str(metadefs_dir()))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    register_image_service(keystone_server, server.url)
    yield server
    server.stop()
    unregister_image_service(keystone_server)


def _listing(outcomes: list[Outcome]) -> str:
    return "\n".join(f"{o.status} {o.name} -- {o.reason.splitlines()[-1] if o.reason else ''}" for o in outcomes)


def _warnings(log: Path, last: int = 40) -> str:
    """The server log's last WARNING/ERROR lines: why a request failed on Glimpse's side, if it knows."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if " WARNING " in line or " ERROR " in line]
    return "\n".join(lines[-last:]) or "(none)"


def test_tempest_image_api(
    glimpse_for_tempest: GlimpseServer,
    keystone_server: KeystoneServer,
    images_to_fetch: FileServer,
    tmp_path: Path,
) -> None:
    install_tempest()
    expected = Expected.load()
    conf = tmp_path / "tempest.conf"
    conf.write_text(
        tempest_conf(
            auth_url=keystone_server.url,
            admin_user=keystone_server.admin_username,
            admin_password=keystone_server.admin_password,
            admin_project=keystone_server.admin_project,
            region=keystone_server.region,
            file_server_url=images_to_fetch.url,
            log_file=tmp_path / "tempest.log",
            lock_path=tmp_path / "locks",
        )
    )
    exclude = tmp_path / "exclude.txt"
    exclude.write_text(expected.exclude_list())

    outcomes, run = run_tempest(tmp_path, conf, exclude)
    counts = Counter(o.status for o in outcomes)
    summary = f"{dict(counts)}; tempest run exited {run.returncode}; log {tmp_path / 'tempest.log'}"
    print(f"Tempest's image API tests against Glimpse: {summary}")  # shown with -s, and in CI's output on failure

    failed = [o for o in outcomes if o.status not in ("success", "skip", "xfail")]
    assert not failed, (
        f"{summary}\n"
        + "\n\n".join(f"{o.name}:\n{o.reason}" for o in failed)
        + f"\n\nGlimpse's warnings and errors:\n{_warnings(glimpse_for_tempest.log)}"
    )
    assert counts["success"] >= expected.baseline_passed, f"{summary}\n{run.stdout[-3000:]}"

    skipped = [o for o in outcomes if o.status == "skip"]
    unlisted = [o for o in skipped if o.name not in expected.skipped]
    assert not unlisted, "skipped but not in tempest-expected.txt:\n" + _listing(unlisted)
    ran_excluded = [o for o in outcomes if o.name in expected.excluded]
    assert not ran_excluded, "excluded but ran:\n" + _listing(ran_excluded)
    assert run.returncode == 0, f"{summary}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
