"""The policy engine with Glance's rule names, and the oslopolicy-* tools through Glimpse's entry points."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from glimpse.auth.context import RequestContext
from glimpse.auth.defaults import list_rules
from glimpse.auth.policy import Policy
from glimpse.errors import Forbidden

BIN = Path(sys.executable).parent
GLANCE_RULES = {
    "get_image", "get_images", "add_image", "modify_image", "delete_image", "upload_image", "download_image",
    "publicize_image", "communitize_image", "deactivate", "reactivate", "add_member", "get_member", "get_members",
    "modify_member", "delete_member", "copy_image", "tasks_api_access", "get_task", "cache_image", "cache_list",
    "cache_delete", "get_metadef_namespace", "add_metadef_namespace", "stores_info_detail", "context_is_admin",
}  # fmt: skip


def ctx(project: str | None, *roles: str) -> RequestContext:
    return RequestContext(project_id=project, user_id="u", roles=frozenset(roles))


def test_every_glance_rule_name_is_registered() -> None:
    names = {rule.name for rule in list_rules()}
    assert names >= GLANCE_RULES


def test_defaults_are_secure_rbac() -> None:
    policy = Policy()
    mine = {"project_id": "p1", "owner": "p1", "visibility": "private", "member_id": None}
    assert policy.check(ctx("p1", "member", "reader"), "modify_image", mine)
    assert not policy.check(ctx("p1", "reader"), "modify_image", mine)
    assert not policy.check(ctx("p2", "member", "reader"), "modify_image", mine)
    assert policy.check(ctx("p2", "admin"), "modify_image", mine)
    assert not policy.check(ctx("p1", "member", "reader"), "publicize_image", mine)
    assert policy.check(ctx("p1", "member", "reader"), "communitize_image", mine)
    shared = {**mine, "visibility": "shared", "member_id": "p2"}
    assert policy.check(ctx("p2", "member"), "modify_member", shared)
    assert not policy.check(ctx("p1", "member"), "modify_member", shared)
    with pytest.raises(Forbidden, match="not authorized to complete delete_image"):
        policy.enforce(ctx("p2", "member"), "delete_image", mine)


def test_unregistered_rule_fails_loudly() -> None:
    with pytest.raises(KeyError):
        Policy().check(ctx("p1", "admin"), "no_such_rule", {})


def test_an_operators_policy_file_overrides_defaults(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"publicize_image": "role:member"\n"delete_image": "!"\n')
    policy = Policy(str(policy_file))
    target = {"project_id": "p1", "owner": "p1", "visibility": "private"}
    assert policy.check(ctx("p1", "member"), "publicize_image", target)
    assert not policy.check(ctx("p1", "admin"), "delete_image", target)


def test_an_edited_policy_file_applies_without_a_signal(tmp_path: Path) -> None:
    """Files are looked at once a second, not on every check: an edit still takes effect by itself."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("{}\n")
    policy = Policy(str(policy_file))
    target = {"project_id": "p1"}
    assert policy.check(ctx("p1", "member", "reader"), "get_images", target)
    policy_file.write_text('"get_images": "!"\n')
    stat = policy_file.stat()
    os.utime(policy_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))  # a coarse clock still sees it
    deadline = time.monotonic() + 10
    while policy.check(ctx("p1", "member", "reader"), "get_images", target) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not policy.check(ctx("p1", "member", "reader"), "get_images", target)


def test_a_policy_file_created_after_start_applies_without_a_signal(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy = Policy(str(policy_file))
    assert policy.check(ctx("p1", "admin"), "delete_image", {"project_id": "p1", "owner": "p1"})
    policy_file.write_text('"delete_image": "!"\n')
    deadline = time.monotonic() + 10
    while policy.check(ctx("p1", "admin"), "delete_image", {"project_id": "p1", "owner": "p1"}):
        assert time.monotonic() < deadline, "the new file was never read"
        time.sleep(0.05)


def test_a_reload_applies_at_once(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("{}\n")
    policy = Policy(str(policy_file))
    assert policy.check(ctx("p1", "member", "reader"), "get_images", {"project_id": "p1"})
    policy_file.write_text('"get_images": "!"\n')
    assert policy.reload() == str(policy_file)
    assert not policy.check(ctx("p1", "member", "reader"), "get_images", {"project_id": "p1"})


def test_oslopolicy_tools_find_glimpse(tmp_path: Path) -> None:
    sample = subprocess.run(
        [BIN / "oslopolicy-sample-generator", "--namespace", "glimpse"], capture_output=True, text=True, check=True
    )
    assert '#"get_image":' in sample.stdout
    effective = tmp_path / "policy.yaml"
    subprocess.run(
        [BIN / "oslopolicy-policy-generator", "--namespace", "glimpse", "--output-file", effective], check=True
    )
    access = tmp_path / "access.json"
    access.write_text(
        json.dumps(
            {
                "token": {
                    "roles": [{"name": "reader", "id": "r"}],
                    "project": {"id": "p1", "name": "P1", "domain": {"id": "default", "name": "Default"}},
                    "user": {"id": "u1", "name": "u", "domain": {"id": "default", "name": "Default"}},
                    "expires_at": "2099-01-01T00:00:00Z",
                    "issued_at": "2020-01-01T00:00:00Z",
                    "methods": ["password"],
                    "catalog": [],
                }
            }
        )
    )
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"project_id": "p1", "owner": "p1"}))

    def check(rule: str) -> str:
        args = ["--policy", effective, "--access", access, "--rule", rule, "--target", target]
        return subprocess.run([BIN / "oslopolicy-checker", *args], capture_output=True, text=True).stdout

    assert "passed: get_images" in check("get_images")
    assert "failed: add_image" in check("add_image")


OWNERLESS_PUBLIC = {"id": "i1", "project_id": None, "owner": None, "visibility": "public", "member_id": None}


@pytest.mark.parametrize("rule", ["modify_image", "deactivate", "reactivate", "delete_image", "add_member"])
def test_a_caller_without_project_never_matches_an_ownerless_image(rule: str) -> None:
    policy = Policy()
    assert not policy.check(ctx(None, "member", "reader"), rule, OWNERLESS_PUBLIC)
    assert not policy.check(ctx("p1", "member", "reader"), rule, OWNERLESS_PUBLIC)
    assert policy.check(RequestContext(None, "u", frozenset({"admin"}), is_admin=True), rule, OWNERLESS_PUBLIC)


def test_an_absent_member_id_matches_no_caller() -> None:
    shared = {"id": "i1", "project_id": "p1", "owner": "p1", "visibility": "shared", "member_id": None}
    assert not Policy().check(ctx(None, "member"), "modify_member", shared)


def test_owns_needs_a_project() -> None:
    assert not ctx(None).owns(None)
    assert ctx("p1").owns("p1")
    assert not ctx("p1").owns(None)


def test_credentials_come_from_oslo_context_with_scope_and_domain() -> None:
    caller = RequestContext(
        project_id=None, user_id="u", roles=frozenset({"admin"}), system_scope="all", user_domain_id="default"
    )
    creds = Policy.credentials(caller)
    assert creds["system_scope"] == "all"
    assert creds["user_domain_id"] == "default"
    assert creds["roles"] == ["admin"]
    assert "project_id" in creds and creds["project_id"] != "None"


def test_a_glance_policy_file_with_system_scope_and_domain_rules(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        '"context_is_admin": "role:admin and system_scope:all"\n'
        '"get_images": "role:reader and project_domain_id:%(domain)s"\n'
    )
    policy = Policy(str(policy_file))
    system_admin = RequestContext(None, "u", frozenset({"admin", "member", "reader"}), system_scope="all")
    project_admin = RequestContext("p1", "u", frozenset({"admin", "member", "reader"}))
    assert policy.is_admin(system_admin)
    assert not policy.is_admin(project_admin)
    in_domain = RequestContext("p1", "u", frozenset({"reader"}), project_domain_id="d1")
    assert policy.check(in_domain, "get_images", {"domain": "d1"})
    assert not policy.check(in_domain, "get_images", {"domain": "d2"})
    assert not policy.check(ctx("p1", "reader"), "get_images", {"domain": None})


class _Answers(BaseHTTPRequestHandler):
    """A remote policy check: answers True under /yes, False elsewhere."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"True" if self.path.startswith("/yes") else b"False"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _answering(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server for http: rules in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_rule_loads_its_check_when_a_rule_uses_it(tmp_path: Path) -> None:
    with _answering(_Answers) as base:
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(f'"delete_image": "{base}/yes"\n"publicize_image": "{base}/no"\n')
        policy = Policy(str(policy_file))
        target = {"project_id": "p1", "owner": "p1", "visibility": "private"}
        assert policy.check(ctx("p1", "reader"), "delete_image", target)
        assert not policy.check(ctx("p1", "admin"), "publicize_image", target)


def test_a_policy_without_http_rules_does_not_import_requests() -> None:
    # A fresh interpreter: a worker holds only what its rules need (requests is 8 MiB of every worker).
    code = (
        "import sys\nfrom glimpse.auth.context import RequestContext\nfrom glimpse.auth.policy import Policy\n"
        "ctx = RequestContext(project_id='p1', user_id='u', roles=frozenset({'member', 'reader'}))\n"
        "assert Policy().check(ctx, 'get_image', {'project_id': 'p1', 'owner': 'p1', 'visibility': 'private'})\n"
        "print(sorted(m for m in ('requests', 'urllib3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_answers_are_remembered_per_caller_and_the_target_keys_the_rule_reads() -> None:
    policy = Policy()
    owner = {"project_id": "p1", "owner": "p1", "visibility": "private", "id": "i1", "protected": False}
    assert policy.check(ctx("p1", "member", "reader"), "get_image", owner)
    assert not policy.check(ctx("p2", "member", "reader"), "get_image", owner)
    assert not policy.check(ctx("p1", "member", "reader"), "get_image", {**owner, "project_id": "p2", "owner": "p2"})
    assert policy.check(ctx("p1", "member", "reader"), "get_image", {**owner, "id": "i2"})
    answers = len(policy._answers)
    # The image id is not read by get_image: another image of the same owner is the same question.
    assert policy.check(ctx("p1", "member", "reader"), "get_image", {**owner, "id": "i3"})
    assert len(policy._answers) == answers
    assert not policy.check(ctx(None, "member", "reader"), "get_image", {**owner, "project_id": None, "owner": None})


def test_a_value_that_cannot_be_a_key_is_asked_every_time(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"get_image": "\'a\':%(tags)s"\n')
    policy = Policy(str(policy_file))
    assert not policy.check(ctx("p1", "reader"), "get_image", {"tags": ["a"]})
    assert policy.check(ctx("p1", "reader"), "get_image", {"tags": "a"})


def test_a_rule_that_may_ask_elsewhere_is_not_remembered(tmp_path: Path) -> None:
    answer = {"path": "/yes"}

    class Switching(_Answers):
        def do_POST(self) -> None:
            self.path = answer["path"]
            super().do_POST()

    with _answering(Switching) as base:
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(f'"delete_image": "role:member and {base}/x"\n')
        policy = Policy(str(policy_file))
        target = {"project_id": "p1", "owner": "p1"}
        assert policy.check(ctx("p1", "member"), "delete_image", target)
        answer["path"] = "/no"
        assert not policy.check(ctx("p1", "member"), "delete_image", target)


def test_a_match_formatted_with_the_whole_target_is_not_remembered() -> None:
    from oslo_policy import _checks

    from glimpse.auth.policy import _target_keys

    rules: dict[str, _checks.BaseCheck] = {}
    assert _target_keys(_checks.GenericCheck("user_id", "%s"), rules, frozenset()) is None
    assert _target_keys(_checks.GenericCheck("user_id", "%(owner)s"), rules, frozenset()) == {"owner"}
    cycle = _checks.RuleCheck("rule", "a")
    assert _target_keys(cycle, {"a": cycle}, frozenset()) is None
    assert _target_keys(_checks.RuleCheck("rule", "missing"), rules, frozenset()) == frozenset()


def test_a_policy_calls_out_while_a_rule_hands_a_check_to_a_server(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"get_images": "role:reader or (role:member and not role:observer)"\n')
    policy = Policy(str(policy_file))
    assert not policy.calls_out  # the defaults and the file's own rules are answered here
    policy_file.write_text('"get_images": "role:reader or (role:member and not http://127.0.0.1:9/check)"\n')
    policy.reload()
    assert policy.calls_out  # however deep in a rule
    policy_file.write_text('"helper": "https://127.0.0.1:9/check"\n"get_images": "rule:helper"\n')
    policy.reload()
    assert policy.calls_out
    policy_file.write_text("{}\n")
    policy.reload()
    assert not policy.calls_out


def test_oslo_policy_options_of_a_glance_api_conf_reach_the_enforcer(tmp_path: Path) -> None:
    """[oslo_policy] as glance-api.conf writes it: policy_dirs is found beside the configuration file (as
    /etc/glance/policy.d is), and the other options are the enforcer's, not oslo.policy's defaults."""
    from glimpse.config import load_settings

    etc = tmp_path / "etc"
    (etc / "policy.d").mkdir(parents=True)
    (etc / "policy.d" / "10-images.yaml").write_text('"get_images": "role:auditor"\n')
    conf = etc / "glance-api.conf"
    conf.write_text(
        "[oslo_policy]\npolicy_dirs = policy.d\nenforce_new_defaults = false\nremote_timeout = 2.5\n"
        "remote_ssl_verify_server_crt = true\n"
    )
    settings = load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "data")})
    assert settings.policy_options["policy_dirs"] == [str(etc / "policy.d")]
    assert settings.policy_options["remote_timeout"] == 2.5
    policy = Policy(settings.policy_file, settings.policy_options)
    target = {"project_id": "p1"}
    assert not policy.check(ctx("p1", "reader", "member"), "get_images", target)  # the folder's rule
    assert policy.check(ctx("p1", "auditor"), "get_images", target)
    values = policy._enforcer.conf.oslo_policy
    assert (values.enforce_new_defaults, values.remote_timeout, values.remote_ssl_verify_server_crt) == (
        False,
        2.5,
        True,
    )
    assert (Policy().check(ctx("p1", "reader"), "get_images", target)) is True  # without the folder


def test_a_policy_server_away_is_logged_once_a_minute_not_once_a_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from glimpse.errors import PolicyUnavailable

    (tmp_path / "policy.yaml").write_text('"get_image": "http://127.0.0.1:9/check"\n')
    policy = Policy(str(tmp_path / "policy.yaml"), {"remote_timeout": 1})
    with caplog.at_level(logging.WARNING, logger="glimpse.auth.policy"):
        for _ in range(3):
            with pytest.raises(PolicyUnavailable):
                policy.check(ctx("p1", "reader"), "get_image", {"project_id": "p1"})
    lines = [r.getMessage() for r in caplog.records if "could not be answered" in r.getMessage()]
    assert len(lines) == 1 and "get_image" in lines[0], lines


def test_a_bad_oslo_policy_value_stops_the_start_a_missing_policy_dir_is_skipped(tmp_path: Path) -> None:
    """A value oslo.policy could not read is refused with the option's name; a policy_dirs folder found nowhere is
    skipped, as oslo.policy skips it for Glance: the defaults and the policy file still apply."""
    from glimpse.config import load_settings
    from glimpse.errors import ConfigError

    conf = tmp_path / "glance-api.conf"
    conf.write_text("[oslo_policy]\nremote_timeout = abc\n")
    with pytest.raises(ConfigError, match=r"remote_timeout.*not valid"):
        load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "data")})
    conf.write_text("[oslo_policy]\npolicy_dirs = nowhere.d\npolicy_dirs = /no/such/policy.d\n")
    (tmp_path / "policy.yaml").write_text('"delete_image": "role:admin"\n')
    settings = load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "data")})
    assert settings.policy_options["policy_dirs"] == ["nowhere.d", "/no/such/policy.d"]
    policy = Policy(settings.policy_file, settings.policy_options)
    target = {"project_id": "p1"}
    assert policy.check(ctx("p1", "reader"), "get_images", target)  # a default
    assert not policy.check(ctx("p1", "member"), "delete_image", target)  # the file beside the configuration
    assert policy.check(ctx("p1", "admin"), "delete_image", target)


def test_a_remote_check_that_raises_is_unavailable_a_local_bug_is_not_hidden(tmp_path: Path) -> None:
    """oslo.policy's HTTP client raises when its server is away: PolicyUnavailable (503) for every kind of check."""
    from glimpse.errors import PolicyUnavailable

    (tmp_path / "policy.yaml").write_text('"get_image": "http://127.0.0.1:9/check"\n')
    policy = Policy(str(tmp_path / "policy.yaml"), {"remote_timeout": 1})
    with pytest.raises(PolicyUnavailable):
        policy.check(ctx("p1", "reader"), "get_image", {"project_id": "p1"})
    with pytest.raises(PolicyUnavailable):
        policy.check_rule(ctx("p1", "reader"), "get_image")
    local = Policy()

    def broken(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("a bug")

    local._enforcer.enforce = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):  # no policy server involved: a bug stays a bug, not a 503
        local.check(ctx("p1", "reader"), "get_image", {"project_id": "p1"})
