"""[import_filtering_opts] and [egress] from the operator's file to the one egress policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.assembly.egress import egress_policy, store_egress_policy
from glimpse.config import Settings, load_settings
from glimpse.errors import BadRequest, ConfigError
from glimpse.sources.egress import EgressPolicy, Limits


def _settings(tmp_path: Path, text: str) -> Settings:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(text)
    return load_settings([str(conf)], overrides={"data_dir": str(tmp_path)})


def test_defaults_are_the_strict_policy(tmp_path: Path) -> None:
    policy = egress_policy(_settings(tmp_path, "[DEFAULT]\n"))
    assert policy == EgressPolicy().refusing("127.0.0.1:9292")  # never its own API, trusted or not
    assert policy.limits == Limits()
    assert (policy.limits.min_rate, policy.limits.rate_window, policy.limits.max_redirects) == (10240, 30.0, 5)


def test_the_operators_options(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        "[import_filtering_opts]\nallowed_ports = 80,443,8080\ndisallowed_hosts = Evil.Example, 8.8.4.4\n"
        "allow_private_addresses = false\n"
        "[egress]\nconnect_timeout = 3\nread_timeout = 20\nmin_rate = 100\nmin_rate_window = 5\n"
        "total_timeout = 600\nmax_redirects = 2\nhttp_store_allowed_hosts = web.internal:8080, files.internal\n",
    )
    policy = egress_policy(settings)
    assert policy.allowed_ports == (80, 443, 8080) and policy.disallowed_hosts == ("evil.example", "8.8.4.4")
    assert policy.limits == Limits(3.0, 20.0, 100, 5.0, 600.0, 2)
    assert policy.trusted == frozenset()  # web-download does not trust the http store's servers
    store = store_egress_policy(settings)
    assert store.trusted == {("web.internal", 8080), ("files.internal", None)}
    with pytest.raises(BadRequest, match="not allowed"):
        policy.vet("http://134743044/x")  # 8.8.4.4 spelt as a number is still the disallowed address
    assert policy.vet("http://134744072/x").host == "134744072"  # 8.8.8.8 is fine
    assert not [o for o in settings.unknown_options if "egress" in o]


def test_bad_ports_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allowed_ports"):
        egress_policy(_settings(tmp_path, "[import_filtering_opts]\nallowed_ports = http\n"))


def test_the_service_never_fetches_from_its_own_endpoints(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "[DEFAULT]\npublic_endpoint = https://images.example.com/\nbind_port = 9393\n")
    policy = egress_policy(settings).trusting("images.example.com", "127.0.0.1")
    for url in ("https://images.example.com/v2/images/x/file", "http://127.0.0.1:9393/v2/images"):
        with pytest.raises(BadRequest, match="own endpoint"):
            policy.check(url)
    assert policy.check("http://images.example.com/x").port == 80  # another port of that host is another thing
    with pytest.raises(ConfigError, match="public_endpoint"):
        egress_policy(_settings(tmp_path, "[DEFAULT]\npublic_endpoint = http://[::1\n"))
