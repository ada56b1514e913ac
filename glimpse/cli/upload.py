"""`glimpse image upload FILE`: create an image through the Images API and send its data over tus (resumable),
with a progress bar, retries of a dropped connection, `--resume` after an interruption, and `--parallel N`
(N partial uploads on N connections, joined by a final concatenation). Prints the image's id and checksums, and
checks them against the file's own."""

from __future__ import annotations

import argparse
import hashlib
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from glimpse.cli import os_auth
from glimpse.cli.tus_client import JSON_ERRORS, Backoff, Stopped, TusError, Uploader, UploadGone, belongs_to, message_of
from glimpse.cli.upload_state import FileIdentity, Part, StateFiles, UploadState
from glimpse.default_options import parse_size

WAITING_STATUSES = ("queued", "uploading", "saving")


def add_parser(image_verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`glimpse image upload`, among the image command's verbs."""
    upload = image_verbs.add_parser(
        "upload",
        help="create an image and upload a file as its data (resumable)",
        description="Creates the image through the Images API and sends the file over tus (resumable uploads). "
        "An interrupted upload (Ctrl-C, a crash, a long network outage) goes on with --resume.",
    )
    upload.add_argument("file", type=Path, help="the image file")
    upload.add_argument("--name", help="the image's name (the file's name)")
    upload.add_argument("--disk-format", help="raw, qcow2, vmdk, ... (from the file's content or extension)")
    upload.add_argument("--container-format", default="bare", help="bare, ovf, ova, ... (bare)")
    upload.add_argument("--visibility", choices=("public", "private", "shared", "community"))
    upload.add_argument("--property", action="append", default=[], metavar="K=V", help="an image property (repeatable)")
    upload.add_argument("--resume", action="store_true", help="go on with this file's interrupted upload")
    upload.add_argument("--parallel", type=int, default=1, metavar="N", help="N connections at once (1)")
    upload.add_argument(
        "--chunk-size", type=parse_size, default=16 * 1024 * 1024, metavar="SIZE", help="bytes per request (16MB)"
    )
    upload.add_argument(
        "--retries", type=int, default=10, metavar="N", help="failures in a row, without progress, before giving up"
    )
    os_auth.add_arguments(upload)


def guess_disk_format(path: Path) -> str:
    """The disk format the file's first bytes show (qcow2, vmdk, vhdx, vhd, vdi, iso), else its extension's,
    else raw (what `openstack image create` assumes)."""
    from glimpse.formats.detection import CONTENT_FORMATS, EXTENSION_FORMATS, HEAD_BYTES, content_format

    with open(path, "rb") as file:
        detected = content_format(file.read(HEAD_BYTES))
    if detected in CONTENT_FORMATS:
        return CONTENT_FORMATS[detected]
    # The name decides otherwise, whatever it says; an OVF package's tar is named after its vmdk disk.
    return {**EXTENSION_FORMATS, ".ova": "vmdk"}.get(path.suffix.lower(), "raw")


def _properties(pairs: list[str]) -> dict[str, str]:
    properties = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--property takes KEY=VALUE, not {pair!r}")
        properties[key.strip()] = value
    return properties


def split(size: int, parallel: int) -> list[tuple[int, int]]:
    """(start, length) of `parallel` parts covering `size` bytes (fewer when the file is tiny; one when empty)."""
    if size == 0:
        return [(0, 0)]
    step = -(-size // min(parallel, size))
    return [(start, min(step, size - start)) for start in range(0, size, step)]


class UploadFailed(Exception):
    pass


class Images:
    """The Images API calls the command makes besides the uploads themselves."""

    def __init__(self, client: httpx.Client, connection: os_auth.Connection, patience: Uploader) -> None:
        self.client = client
        self.connection = connection
        self.base = connection.endpoint
        self.patience = patience

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        def call() -> httpx.Response:
            headers = {**self.connection.headers(), **JSON_ERRORS}
            return self.client.request(method, f"{self.base}{path}", headers=headers, **kwargs)

        return self.patience.patiently(f"{method} {path}", call, repeatable=method != "POST")

    def create(self, body: Mapping[str, object]) -> dict[str, Any]:
        response = self._call("POST", "/v2/images", json=body)
        if response.status_code != 201:
            raise UploadFailed(f"the image was not created: {message_of(response)}")
        image: dict[str, Any] = response.json()
        return image

    def get(self, image_id: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/v2/images/{image_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UploadFailed(f"the image could not be read: {message_of(response)}")
        image: dict[str, Any] = response.json()
        return image

    def uploads_url(self, image_id: str) -> str:
        return f"{self.base}/v2/images/{image_id}/uploads"


def _why_not_resumable(state: UploadState | None, identity: FileIdentity, images: Images) -> str | None:
    """None when `state` can go on; otherwise why it cannot (the upload then starts afresh)."""
    if state is None:
        return "there is no interrupted upload of this file to this server"
    if state.file != identity:
        return f"the file changed since its upload into image {state.image_id} began"
    if any(not belongs_to(p.url, images.base, state.image_id) for p in state.parts):
        return "the saved state names uploads of another image or server"
    if sum(p.length for p in state.parts) != identity.size:
        return "the saved state does not cover the file"
    image = images.get(state.image_id)
    if image is None:
        return f"image {state.image_id} no longer exists"
    if image.get("status") != "active" and image.get("status") not in WAITING_STATUSES:
        return f"image {state.image_id} is {image.get('status')}, no longer waiting for data"
    if image.get("status") == "active" and image.get("size") != identity.size:
        return f"image {state.image_id} is already active with other data"
    return None


class Run:
    """One invocation: the connection, the file, the state, the progress bar."""

    def __init__(self, args: argparse.Namespace, connection: os_auth.Connection, console: Console) -> None:
        self.args = args
        self.console = console
        self.file: Path = args.file
        self.identity = FileIdentity.of(self.file)
        self.connection = connection
        self.timeout = httpx.Timeout(30.0, read=300.0)
        self.client = httpx.Client(verify=connection.verify, timeout=self.timeout)
        self.states = StateFiles()
        self.stop = threading.Event()
        self.backoff = Backoff(attempts=max(1, args.retries))
        self.images = Images(self.client, connection, self.uploader())

    def uploader(self, client: httpx.Client | None = None) -> Uploader:
        return Uploader(client or self.client, self.connection.headers, self.backoff, self.stop, self._note)

    def _note(self, message: str) -> None:
        self.console.print(f"[yellow]{message}[/yellow]", soft_wrap=True, highlight=False)

    def start_or_resume(self) -> UploadState:
        saved = self.states.load(self.connection.endpoint, self.file)
        if self.args.resume:
            reason = _why_not_resumable(saved, self.identity, self.images)
            if reason is None:
                assert saved is not None
                self.console.print(f"Resuming the upload into image {saved.image_id}.", highlight=False)
                return saved
            self._note(f"Not resuming: {reason}; starting a new image.")
            if saved is not None:
                self._forget(saved)
        elif saved is not None:
            self._note(
                f"An interrupted upload of this file into image {saved.image_id} was left (--resume goes on with it); "
                "starting a new image."
            )
        return self._start()

    def _forget(self, saved: UploadState) -> None:
        """Free the server of an abandoned upload's bytes (termination); the image itself stays queued."""
        for url in (*(p.url for p in saved.parts), *((saved.final,) if saved.final else ())):
            if belongs_to(url, self.images.base, saved.image_id):
                try:
                    self.client.delete(url, headers={**self.connection.headers(), "Tus-Resumable": "1.0.0"})
                except httpx.TransportError:
                    pass
        self._note(f"Image {saved.image_id} is left as it was: delete it if it is no longer needed.")

    def _start(self) -> UploadState:
        args = self.args
        body: dict[str, object] = {
            "name": args.name or self.file.name,
            "disk_format": args.disk_format or guess_disk_format(self.file),
            "container_format": args.container_format,
            **_properties(args.property),
        }
        if args.visibility:
            body["visibility"] = args.visibility
        image = self.images.create(body)
        image_id = str(image["id"])
        endpoint = self.images.uploads_url(image_id)
        ranges = split(self.identity.size, args.parallel)
        uploader = self.uploader()
        concat = "partial" if len(ranges) > 1 else None
        parts = tuple(
            Part(uploader.create(endpoint, length, concat, {"filename": self.file.name}), start, length)
            for start, length in ranges
        )
        state = UploadState(self.connection.endpoint, self.identity, image_id, parts)
        self.states.save(state, self.file)
        self.console.print(
            f"Image {image_id} created ({body['disk_format']}, {body['container_format']}); uploading "
            f"{self.identity.size} bytes{f' on {len(parts)} connections' if len(parts) > 1 else ''}.",
            highlight=False,
        )
        return state

    def send(self, state: UploadState) -> None:
        """Every part's bytes from the server's offset on; an upload that ended because its image got all its
        data (the answer to the last chunk was lost, or an empty file) needs nothing more."""
        try:
            self._send(state)
        except UploadGone:
            image = self.images.get(state.image_id)
            if image is None or image.get("status") != "active" or image.get("size") != self.identity.size:
                raise

    def _send(self, state: UploadState) -> None:
        offsets = [self.uploader().offset(p.url, p.length) for p in state.parts]
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        lock = threading.Lock()
        with progress:
            task = progress.add_task(self.file.name, total=self.identity.size, completed=sum(offsets))

            def report(index: int) -> Callable[[int], None]:
                def update(offset: int) -> None:
                    with lock:
                        offsets[index] = offset
                        progress.update(task, completed=sum(offsets))

                return update

            futures = [self._in_thread(partial(self._send_part, p, report(i))) for i, p in enumerate(state.parts)]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            error = next((f.exception() for f in done if f.exception() is not None), None)
            if error is not None:
                self.stop.set()  # the other parts stop at their next chunk; what they sent stays resumable
                raise error

    def _send_part(self, part: Part, progress: Callable[[int], None]) -> None:
        with httpx.Client(verify=self.connection.verify, timeout=self.timeout) as client, open(self.file, "rb") as f:
            self.uploader(client).send(part.url, f, part.start, part.length, self.args.chunk_size, progress)

    def _in_thread(self, work: Callable[[], None]) -> Future[None]:
        """A daemon thread (Ctrl-C ends the process without waiting for it) whose outcome the main thread waits
        for in short steps (so the interrupt reaches it)."""
        future: Future[None] = Future()

        def run() -> None:
            try:
                work()
            except BaseException as exc:  # handed to the waiting thread, whatever it is
                future.set_exception(exc)
            else:
                future.set_result(None)

        threading.Thread(target=run, daemon=True).start()
        return future

    def finish(self, state: UploadState) -> dict[str, Any]:
        if len(state.parts) > 1 and state.final is None:
            self.console.print("Joining the parts…")
            final = self.uploader().create(
                self.images.uploads_url(state.image_id), None, "final;" + " ".join(p.url for p in state.parts), {}
            )
            state = UploadState(state.endpoint, state.file, state.image_id, state.parts, final)
            self.states.save(state, self.file)
        for _ in range(1200):
            image = self.images.get(state.image_id)
            if image is None:
                raise UploadFailed(f"image {state.image_id} was deleted during the upload")
            if image.get("status") == "active":
                self.states.remove(self.connection.endpoint, self.file)
                return image
            if image.get("status") != "saving":  # saving: a node still joins or checks the data
                raise TusError(
                    f"image {state.image_id} is {image.get('status')} after its last byte: the server did not keep "
                    "the data (its log says why); upload it again without --resume"
                )
            if self.stop.wait(0.5):
                raise Stopped
        raise UploadFailed(f"image {state.image_id} did not become active after its last byte")


def _local_hashes(path: Path) -> Future[dict[str, str]]:
    """md5 and sha512 of the file, read in a thread while the upload goes on."""
    future: Future[dict[str, str]] = Future()

    def run() -> None:
        md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
        try:
            with open(path, "rb") as file:
                while chunk := file.read(1024 * 1024):
                    md5.update(chunk)
                    sha512.update(chunk)
        except OSError as exc:
            future.set_exception(exc)
        else:
            future.set_result({"md5": md5.hexdigest(), "sha512": sha512.hexdigest()})

    threading.Thread(target=run, daemon=True).start()
    return future


def _report(image: dict[str, Any], local: dict[str, str], out: Console) -> bool:
    """Print the image's id and checksums; False when they are not the file's."""
    out.print(f"[green]Image {image['id']} is active[/green] ({image.get('size')} bytes).", highlight=False)
    print(f"id: {image['id']}")
    print(f"checksum: {image.get('checksum')}")
    print(f"os_hash_algo: {image.get('os_hash_algo')}")
    print(f"os_hash_value: {image.get('os_hash_value')}")
    algo = image.get("os_hash_algo") or "sha512"
    wanted = local.get(algo)
    matches = image.get("checksum") == local["md5"] and (wanted is None or image.get("os_hash_value") == wanted)
    if matches:
        out.print("Checksums match the file's.")
    else:
        out.print("[red]The image's checksums are not the file's: the data was damaged on the way.[/red]")
    return matches


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace, console: Console) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per chunk would drown the progress bar
    signal.signal(signal.SIGTERM, _interrupted)  # a terminal closing or `kill`: leave a resumable upload too
    if not args.file.is_file():
        console.print(f"[red]glimpse: {args.file} is not a file.[/red]")
        return 2
    if args.parallel < 1 or args.chunk_size < 1:
        console.print("[red]glimpse: --parallel and --chunk-size must be at least 1.[/red]")
        return 2
    try:
        connection = os_auth.connect(args)
    except os_auth.AuthError as exc:
        console.print(f"[red]glimpse: {exc}[/red]", soft_wrap=True, highlight=False)
        return 2
    upload = Run(args, connection, console)
    local = _local_hashes(args.file)
    hint = f"glimpse image upload {args.file} --resume"
    try:
        state = upload.start_or_resume()
        if state.final is None:
            upload.send(state)
        image = upload.finish(state)
    except (KeyboardInterrupt, Stopped):
        upload.stop.set()
        console.print(
            f"\n[yellow]Interrupted. The bytes sent so far are kept on the server: `{hint}` (with the same "
            "connection options) goes on from there.[/yellow]",
            soft_wrap=True,
            highlight=False,
        )
        return 130
    except UploadGone as exc:
        console.print(f"[red]glimpse: {exc}; start again without --resume.[/red]", soft_wrap=True, highlight=False)
        upload.states.remove(connection.endpoint, args.file)
        return 1
    except (TusError, UploadFailed, OSError) as exc:
        console.print(f"[red]glimpse: {exc}[/red]", soft_wrap=True, highlight=False)
        if getattr(exc, "resumable", False) or isinstance(exc, (UploadFailed, OSError)):
            console.print(f"The upload can go on where it stopped: `{hint}`.", soft_wrap=True, highlight=False)
        else:
            upload.states.remove(connection.endpoint, args.file)
        return 1
    finally:
        upload.client.close()
    return 0 if _report(image, local.result(), console) else 1
