"""Hypothesis strategies for hostile requests to every endpoint of the Images API and the dashboard.

A request is drawn as a template: `{image}` in its path stands for the image the test made for this
example, so most requests reach real handlers instead of stopping at a 404.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

IMAGE = "{image}"
PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")

# Strings that broke something once, or sit on a boundary.
SPECIAL = [
    "", "\x00", "a\x00b", "\ud800", "x\udfffy", "²", "\u0663", "\u0663\u0664", "-1", "0", "1", "9" * 19, "9" * 30,
    str(2**31), str(2**63), str(2**64), "1e400", "NaN", "x" * 256, "x" * 70000, "..", "../", "%00", "%2f", "~1",
    "http://[::1", "http://[::1/x", "http://h:99999/", "http://127.0.0.1/x", "file:///etc/passwd", "in:a,\"b,c\"",
    "in:", "gt:10000-01-01T00:00:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
    "lt:99999999999999", "2024-02-30T00:00:00Z", "true", "false", "null", "raw", "bare", "active", "public",
    "shared", "community", "private", "all", "pending", "accepted", "rejected", "name:asc,size:desc", "id:up",
    "\u202e", "\t", " ", "🙂", "a,b", "a;b", "a/b",
]  # fmt: skip
ATTRIBUTES = [
    "name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "disk_format", "container_format",
    "tags", "owner", "id", "status", "size", "checksum", "locations", "kernel_id", "ramdisk_id", "description",
    "os_glance_x", "deleted", "self", "schema", "created_at", "extra", "hw_x", "tags/0", "tags/-", "tags/²",
]  # fmt: skip
FILTERS = [
    "limit", "marker", "sort", "sort_key", "sort_dir", "tag", "size_min", "size_max", "visibility", "member_status",
    "protected", "os_hidden", "name", "status", "owner", "container_format", "disk_format", "checksum",
    "os_hash_value", "id", "created_at", "updated_at", "min_ram", "min_disk", "virtual_size", "changes-since", "p",
]  # fmt: skip
# Writable attributes with values the service accepts: requests built from them get past validation.
VALID: dict[str, list[Any]] = {
    "name": ["x", None, "n" * 255], "visibility": ["public", "private", "shared", "community"],
    "protected": [True, False], "os_hidden": [True, False], "min_disk": [0, 1, 2**31 - 1], "min_ram": [0, 512],
    "disk_format": ["raw", "qcow2", None], "container_format": ["bare", "ovf"], "tags": [["a", "b"], []],
    "extra": ["w", "v" * 300], "hw_x": ["1"], "kernel_id": [None, "00000000-0000-0000-0000-000000000000"],
    "description": ["d"], "owner": ["prj-a"], "tags/-": ["t2"], "tags/0": ["t0"], "new": ["n"],
}  # fmt: skip
BIG_INTS = [2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40]

chars = st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udc00", "²", "\u0663", "/", "%", "~"]))
text = st.one_of(st.sampled_from(SPECIAL), st.text(chars, max_size=24))
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.sampled_from(BIG_INTS), st.floats(allow_nan=False), text
)
hostile_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
# Values a real client sends, so that many requests get past validation to the code behind it.
plausible = st.sampled_from(
    ["x", "prj-a", "prj-b", "raw", "bare", "qcow2", "public", "private", "shared", "community", True, False, 0, 1,
     512, None, ["a", "b"], [], {}, "2024-01-01T00:00:00Z", "accepted", "rejected", "pending", "v" * 300]
)  # fmt: skip
json_value = st.one_of(plausible, plausible, hostile_value)


@dataclass
class Req:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | None = None
    form: dict[str, str] | None = None  # dashboard posts: the CSRF token is added when sent

    def url(self, image: str) -> str:
        query = "&".join(f"{_seg(k)}={_seg(v)}" for k, v in self.query)
        return self.path.replace(IMAGE, image) + (f"?{query}" if query else "")


def _seg(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


url_text = text.filter(lambda s: len(s) < 1000)  # httpx itself refuses URLs past 64 KiB
segment = url_text.map(_seg)
target = st.one_of(*[st.just(IMAGE)] * 6, segment, st.just("00000000-0000-0000-0000-000000000000"))
# Header values a real HTTP parser delivers: no CR, LF or NUL (llhttp refuses them), any other byte.
header_value = st.one_of(
    st.sampled_from([s.encode("utf-8", "surrogatepass") for s in SPECIAL if "\x00" not in s and len(s) < 300]),
    st.binary(max_size=24).map(lambda b: b.translate(None, b"\r\n\x00").strip()),
)
json_body = st.one_of(
    json_value.map(_encode),
    st.binary(max_size=64),
    st.sampled_from([b"[" * 50 + b"]" * 50, b"[" * 5000, b'{"a": "\\ud800"}', b"{" + b" " * 120_000 + b"}"]),
)
content_type = st.sampled_from(["application/json", *PATCH_TYPES, "text/plain", "", "application/octet-stream"])


def image_body() -> st.SearchStrategy[bytes]:
    attrs = st.dictionaries(st.sampled_from(ATTRIBUTES) | text, json_value, max_size=6)
    likely = st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in VALID.items() if "/" not in k})
    return st.one_of(likely.map(_encode), likely.map(_encode), attrs.map(_encode), json_body)


def patch_body() -> st.SearchStrategy[bytes]:
    op = st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace", "remove", "move", None]),
            "path": st.one_of(*[st.sampled_from(ATTRIBUTES).map(lambda a: "/" + a)] * 3, text),
        },
        optional={"value": json_value},
    )
    old_style = st.dictionaries(st.sampled_from(["add", "replace", "remove"]), text, min_size=1, max_size=2).map(
        lambda d: {**d, "value": "v"}
    )
    likely = st.sampled_from(sorted(VALID)).flatmap(
        lambda a: st.fixed_dictionaries(
            {"op": st.sampled_from(["add", "replace", "remove"]), "path": st.just("/" + a),
             "value": st.sampled_from(VALID[a])}
        )
    )  # fmt: skip
    ops = st.lists(op, min_size=1, max_size=3).map(_encode)
    likely_ops = st.lists(likely, min_size=1, max_size=2).map(_encode)
    return st.one_of(likely_ops, likely_ops, ops, ops, st.lists(old_style, max_size=3).map(_encode), json_body)


def _json(method: str, path: str, body: bytes, ctype: str = "application/json") -> Req:
    return Req(method, path, headers=[(b"content-type", ctype.encode())], body=body)


def _one(*options: Any) -> Any:
    return st.sampled_from(options)


def _pairs(keys: st.SearchStrategy[Any], values: st.SearchStrategy[Any], most: int) -> Any:
    return st.lists(st.tuples(keys, values), max_size=most)


WEBHOOK_FIELDS = _one("url", "secret", "events", "description", "enabled", "global", "project_id")
QUOTAS = _one("image_size_total", "image_count_total", "image_stage_total", "image_count_uploading")
INFO = _one("/v2/info/usage", "/v2/info/import", "/v2/info/stores", "/v2/info/stores/detail", "/v2/quotas", "/")
RANGES = header_value | _one(b"bytes=0-3", b"bytes=-2", b"bytes=5-", b"bytes 0-3/16")
IMPORT_METHOD = st.fixed_dictionaries(
    {"name": _one("glance-direct", "web-download", "copy-image", "glance-download", "x") | text},
    optional={"uri": text, "glance_image_id": text, "glance_region": text},
)
IDENTITY = _one(b"x-project-id", b"x-tenant-id", b"x-user-id", b"x-roles")  # the no-auth caller
LONG = st.just(b"p" * 256)
IMPORT_FLAGS = st.dictionaries(_one("stores", "all_stores", "all_stores_must_succeed"), json_value)
LEGACY_TASK = st.fixed_dictionaries(
    {"type": _one("import") | json_value},
    optional={
        "input": st.fixed_dictionaries(
            {},
            optional={
                "import_from": json_value | text,
                "import_from_format": json_value,
                "image_properties": st.dictionaries(st.sampled_from(ATTRIBUTES) | text, json_value, max_size=4),
            },
        )
        | json_value
    },
)


def _upload(d: st.DrawFn, i: str) -> Req:
    headers = [(b"content-type", d(_one(b"application/octet-stream", b"text/plain")))]
    headers += d(_pairs(_one(b"x-openstack-image-size", b"x-image-meta-store"), header_value, 2))
    return Req("PUT", f"{i}/{d(_one('file', 'stage'))}", headers=headers, body=d(st.binary(max_size=64)))


def _import(d: st.DrawFn, i: str) -> Req:
    return _json("POST", f"{i}/import", _encode({"method": d(IMPORT_METHOD), **d(IMPORT_FLAGS)}))


BUILDERS: dict[str, Any] = {
    "create": lambda d, i, w: _json("POST", "/v2/images", d(image_body()), d(content_type)),
    "patch": lambda d, i, w: _json("PATCH", i, d(patch_body()), d(_one(*PATCH_TYPES * 4, "application/json"))),
    "show": lambda d, i, w: Req(d(_one("GET", "HEAD")), i),
    "delete": lambda d, i, w: Req("DELETE", i),
    "list": lambda d, i, w: Req("GET", "/v2/images", query=d(_pairs(st.sampled_from(FILTERS) | url_text, url_text, 6))),
    "action": lambda d, i, w: Req("POST", f"{i}/actions/{d(_one('deactivate', 'reactivate') | segment)}"),
    "tag": lambda d, i, w: Req(d(_one("PUT", "DELETE")), f"{i}/tags/{d(segment)}"),
    "members": lambda d, i, w: _json("POST", f"{i}/members", _encode({"member": d(_one("prj-a") | json_value | text)})),
    "member": lambda d, i, w: _json(
        d(_one("GET", "PUT", "DELETE")), f"{i}/members/{d(segment)}", _encode({"status": d(json_value)})
    ),
    "members_list": lambda d, i, w: Req("GET", f"{i}/members"),
    "upload": lambda d, i, w: _upload(d, i),
    "download": lambda d, i, w: Req("GET", f"{i}/file", headers=d(_pairs(_one(b"range", b"content-range"), RANGES, 2))),
    "import": lambda d, i, w: _import(d, i),
    "tasks": lambda d, i, w: Req("GET", "/v2/tasks", query=d(_pairs(_one("limit", "status", "type"), url_text, 3))),
    "task": lambda d, i, w: Req("GET", f"/v2/tasks/{d(segment)}"),
    "task_create": lambda d, i, w: _json("POST", "/v2/tasks", _encode(d(LEGACY_TASK))),
    "image_tasks": lambda d, i, w: Req("GET", f"{i}/tasks"),
    "quota": lambda d, i, w: _json(
        d(_one("GET", "PUT")), f"/v2/quotas/{d(segment)}", _encode(d(st.dictionaries(QUOTAS | text, json_value)))
    ),
    "info": lambda d, i, w: Req("GET", d(INFO)),
    "schema": lambda d, i, w: Req("GET", f"/v2/schemas/{d(_one('image', 'images', 'member', 'tasks') | segment)}"),
    "store_delete": lambda d, i, w: Req("DELETE", f"/v2/stores/{d(_one('file', 'http') | segment)}/{w}"),
    "locations": lambda d, i, w: _json(
        d(_one("POST", "GET")),
        f"{i}/locations",
        _encode({"url": d(json_value | text), "validation_data": d(json_value)}),
    ),
    "webhooks": lambda d, i, w: _json(
        d(_one("POST", "POST", "GET")), "/v2/webhooks", _encode(d(st.dictionaries(WEBHOOK_FIELDS | text, json_value)))
    ),
    "webhook": lambda d, i, w: _json(
        d(_one("GET", "PATCH", "DELETE")),
        f"/v2/webhooks/{d(segment)}",
        _encode(d(st.dictionaries(WEBHOOK_FIELDS | text, json_value))),
        d(_one("application/json", "application/merge-patch+json", "text/plain")),
    ),
    "webhook_log": lambda d, i, w: Req(
        d(_one("GET", "POST")),
        f"/v2/webhooks/{d(segment)}/{d(_one('deliveries', 'actions/test') | segment)}",
        query=d(_pairs(_one("limit") | url_text, url_text, 2)),
    ),
    "odd_path": lambda d, i, w: Req(d(_one("GET", "PUT", "POST", "PATCH", "DELETE")), f"/v2/{d(segment)}/{d(segment)}"),
}


@st.composite
def api_request(draw: st.DrawFn) -> Req:
    where = draw(target)
    kind = draw(st.sampled_from(sorted(BUILDERS)))
    req: Req = BUILDERS[kind](draw, f"/v2/images/{where}", where)
    req.headers += draw(st.one_of(st.just([]), st.just([]), st.just([]), _pairs(IDENTITY, header_value | LONG, 2)))
    return req


FORM_FIELDS = ["name", "disk_format", "container_format", "visibility", "protected", "min_disk", "min_ram",
               "properties", "description", "kernel_id", "ramdisk_id", "architecture", "url", "new_key",
               "new_value", "member", "prop:extra", "remove:extra"]  # fmt: skip
ACTIONS = ["edit", "protect", "unprotect", "deactivate", "reactivate", "delete", "share", "unshare", "accept",
           "reject", "nothing"]  # fmt: skip
form_text = st.one_of(text.filter(lambda s: "\x00" not in s and len(s) < 1000), st.sampled_from(SPECIAL))


@st.composite
def dashboard_request(draw: st.DrawFn) -> Req:
    """A dashboard page or form post; strings may hold NUL (a form can send %00) but no surrogate."""
    where = draw(st.one_of(st.just(IMAGE), st.just(IMAGE), st.just(IMAGE), segment))
    form = draw(st.dictionaries(st.sampled_from(FORM_FIELDS), text.map(_no_surrogates), max_size=8))
    kind = draw(st.sampled_from(["create", "action", "list", "show", "upload"]))
    if kind == "create":  # urlencoded, or multipart with the image file last (as browsers send it)
        data = draw(st.none() | st.binary(max_size=64))
        return Req("POST", "/dashboard/images/new", form={"disk_format": "raw", **form}, body=data)
    if kind == "action":
        return Req("POST", f"/dashboard/images/{where}/{draw(st.sampled_from(ACTIONS))}", form=form)
    if kind == "list":
        keys = st.sampled_from(["q", "status", "visibility", "disk_format", "member_status", "sort_key", "sort_dir",
                                "limit", "marker", "scope"])  # fmt: skip
        return Req("GET", "/dashboard/images", query=draw(st.lists(st.tuples(keys, url_text), max_size=4)))
    if kind == "show":
        return Req("GET", f"/dashboard/images/{where}{draw(st.sampled_from(['', '/delete', '/download']))}")
    return Req("PUT", f"/dashboard/images/{where}/file", body=draw(st.binary(max_size=64)))


def _no_surrogates(value: str) -> str:
    return value.encode("utf-8", "replace").decode("utf-8")
