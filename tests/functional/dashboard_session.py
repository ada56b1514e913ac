"""The dashboard as a browser uses it, over plain HTTP with httpx: the session cookie is Secure, so it is carried
by hand."""

from __future__ import annotations

import re

import httpx


class DashboardSession:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
        self.cookie = ""

    def send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {**dict(kwargs.pop("headers", {}) or {}), "Cookie": self.cookie}  # type: ignore[call-overload]
        response = self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        for line in response.headers.get_list("set-cookie"):
            self.cookie = line.split(";", 1)[0]
        return response

    def csrf(self, path: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.send("GET", path).text)
        assert found, path
        return found.group(1)

    def login(self, project: str = "prj", role: str = "member") -> None:
        form = {"csrf_token": self.csrf("/dashboard/login"), "project": project, "role": role}
        assert self.send("POST", "/dashboard/login", data=form).status_code == 303
