"""How the supervisor makes a worker: forked while it runs no other thread, spawned (as uvicorn does) otherwise."""

from __future__ import annotations

import subprocess
import sys
import threading
from multiprocessing.context import SpawnProcess
from pathlib import Path

import uvicorn

from glimpse.cli.supervisor import single_threaded, worker_process


def _target(sockets: list[object] | None = None) -> None:
    raise AssertionError("never started here")


def test_a_lone_thread_forks_its_workers() -> None:
    # A fresh interpreter: this test process may have threads of other tests running.
    code = (
        "import uvicorn\nfrom multiprocessing.context import ForkProcess\n"
        "from glimpse.cli.supervisor import single_threaded, worker_process\n"
        "config = uvicorn.Config('glimpse.app:app_from_environment', factory=True)\n"
        "assert single_threaded()\n"
        "assert isinstance(worker_process(config, print, []), ForkProcess)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_another_thread_running_means_a_spawned_worker() -> None:
    config = uvicorn.Config("glimpse.app:app_from_environment", factory=True)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not single_threaded()
        assert isinstance(worker_process(config, _target, []), SpawnProcess)
    finally:
        release.set()
        other.join()


def test_what_every_worker_imports_as_it_starts_is_imported_before_the_fork() -> None:
    # A fresh interpreter, as `glimpse serve` has: uvicorn's event loop and anyio's lazily loaded parts are not in it
    # yet; after preload they are, and the supervisor still runs one thread (so it forks).
    code = (
        "import sys, uvicorn\nfrom glimpse.cli.supervisor import preload, single_threaded\n"
        "lazy = ('uvloop', 'anyio._core._sockets', 'anyio._core._streams', 'anyio.lowlevel')\n"
        "assert not any(name in sys.modules for name in lazy)\n"
        "preload(uvicorn.Config('glimpse.app:app_from_environment', factory=True))\n"
        "assert all(name in sys.modules for name in lazy), [n for n in lazy if n not in sys.modules]\n"
        "assert single_threaded()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_serve_command_leaves_the_other_commands_tools_out_of_the_workers(tmp_path: Path) -> None:
    """What `glimpse serve` imports before it forks stays in every worker: rich (the other commands' tables) and
    Alembic (the embedded database's first migration, run in a child process) must not be among it. The
    supervisor's run is stopped just before it forks, in a fresh interpreter."""
    code = (
        "import sys\nimport glimpse.cli.supervisor as supervisor\n"
        "def stop(self):\n"
        "    print(sorted({n.split('.')[0] for n in sys.modules} & {'rich', 'alembic', 'mako'}))\n"
        "    raise SystemExit(0)\n"
        "supervisor.Supervisor.run = stop\n"
        "from glimpse.cli.__main__ import main\n"
        f"main(['serve', '--data-dir', {str(tmp_path / 'data')!r}, '--workers', '2', '--port', '0'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert (tmp_path / "data").is_dir()  # the embedded database was made and migrated first
