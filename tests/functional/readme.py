"""The README's ```sh blocks, and a shell that runs their commands one by one exactly as printed.

A block is a list of commands: each command is one line, or several joined by a trailing backslash, kept
verbatim (comments included) and handed to bash. Variables a command exports or sets carry over to the next
command, as they would in the reader's terminal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    heading: str  # the nearest heading above the block
    line: int  # the line of the opening fence, 1-based
    text: str

    @property
    def commands(self) -> list[str]:
        commands: list[str] = []
        pending = ""
        for line in self.text.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line
            if line.endswith("\\"):
                pending += "\n"
                continue
            commands.append(pending)
            pending = ""
        assert not pending, f"README line {self.line}: a command ends with a backslash"
        return commands

    @property
    def first(self) -> str:
        return self.commands[0]


def sh_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    blocks: list[Block] = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            end = lines.index("```", i + 1)
            if line.strip() == "```sh":
                blocks.append(Block(heading, i + 1, "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return blocks


@dataclass
class Result:
    command: str
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"$ {self.command}\nexit status {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class Shell:
    """A reader's terminal: a working directory and an environment that commands may change."""

    def __init__(self, cwd: Path, env: dict[str, str], state: Path) -> None:
        self.cwd = cwd
        self.env = dict(env)
        self.state = state  # where each command leaves its environment for the next (outside cwd)

    def run(self, command: str, timeout: float = 300) -> Result:
        # set -a: a variable the command sets (IMAGE=...) is kept for the next command, as in a terminal.
        script = f'set -a\n{command}\n__readme_status=$?\nenv -0 > "$__README_STATE"\nexit $__readme_status\n'
        env = {**self.env, "__README_STATE": str(self.state)}
        self.state.unlink(missing_ok=True)
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,  # both clients would read a piped stdin as image data
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if self.state.exists():
            carried = dict(entry.split("=", 1) for entry in self.state.read_text().split("\0") if "=" in entry)
            for name in ("__README_STATE", "_", "SHLVL", "OLDPWD", "__readme_status"):
                carried.pop(name, None)
            self.env = carried
        return Result(command, proc.returncode, proc.stdout, proc.stderr)

    def start(self, command: str, log: Path) -> subprocess.Popen[bytes]:
        """A long-running command (a server), as in another terminal; stop it with stop()."""
        with open(log, "ab") as out:
            return subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"the server exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
        try:
            if httpx.get(f"{url}/versions", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"nothing answered on {url} within {seconds} s:\n{log.read_text()[-4000:]}"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def one_block(blocks: list[Block], first: str) -> Block:
    """The one block whose first command starts with `first`."""
    found = [b for b in blocks if b.first.startswith(first)]
    assert len(found) == 1, f"expected one ```sh block starting with {first!r} in the README, found {len(found)}"
    return found[0]


def ini_block_after(heading: str, starts_with: str) -> str:
    """The first ```ini block under `heading` whose text starts with `starts_with`."""
    pattern = re.compile(r"^#+ (.*?)$|^```(\w*)\n(.*?)^```$", flags=re.M | re.S)
    current = ""
    for match in pattern.finditer(README.read_text()):
        if match.group(1) is not None:
            current = match.group(1).strip()
        elif current == heading and match.group(2) == "ini" and match.group(3).startswith(starts_with):
            return match.group(3)
    raise AssertionError(f"no ```ini block starting with {starts_with!r} under {heading!r} in the README")
