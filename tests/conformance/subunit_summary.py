"""Summarise the last `tempest run` in a folder as JSON: [{"id", "status", "reason"}, ...] on stdout.

Runs inside Tempest's venv (python-subunit and testtools live there, not in Glimpse's):
    .venv-tempest/bin/python tests/conformance/subunit_summary.py WORKDIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import subunit
import testtools


def main(workdir: Path) -> None:
    repository = workdir / ".stestr"
    runs = sorted((p for p in repository.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    results: list[dict[str, str]] = []

    def collect(test: dict[str, Any]) -> None:
        details = test.get("details", {})
        reason = ""
        for key in ("reason", "traceback"):
            if key in details:
                reason = details[key].as_text().strip()
                break
        results.append({"id": test["id"], "status": test["status"], "reason": reason})

    # stestr keeps each run as a subunit version 1 (text) stream: read it as that, hand on version 2 events.
    with open(runs[-1], "rb") as stream:
        result = testtools.ExtendedToStreamDecorator(testtools.StreamToDict(collect))
        result.startTestRun()
        subunit.ProtocolTestCase(stream).run(result)
        result.stopTestRun()
    # setUpClass failures and skips show as tests named after the class, which is what we want to see.
    json.dump([r for r in results if r["id"] and r["status"] not in ("exists", "inprogress")], sys.stdout, indent=1)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
