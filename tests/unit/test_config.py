"""glimpse.config: glance-api.conf-style files -> Settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.config import Settings, load_settings, unknown_options
from glimpse.default_options import TIB, parse_size
from glimpse.errors import ConfigError

CONF = """\
[DEFAULT]
bind_host = 0.0.0.0
bind_port = 9393
workers = 3
image_size_cap = 1000
user_storage_quota = 10GB
image_property_quota = 7
image_tag_quota = -1
limit_param_default = 10
api_limit_max = 50
show_image_direct_url = true
hashing_algorithm = sha256
enabled_import_methods = glance-direct,web-download
public_endpoint = https://images.example.com
debug = true
log_file = /var/log/glance/api.log

[database]
connection = sqlite:////srv/glance/glance.db
max_pool_size = 5

[glance_store]
stores = file
default_store = file
filesystem_store_datadir = /srv/glance/images

[paste_deploy]
flavor = keystone

[keystone_authtoken]
auth_url = http://keystone:5000
service_token_roles = service
"""


def write(tmp_path: Path, text: str, name: str = "glance-api.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_without_files(tmp_path: Path) -> None:
    settings = load_settings([], overrides={"data_dir": str(tmp_path / "data")})
    assert settings.bind_host == "127.0.0.1"
    assert settings.bind_port == 9292
    assert settings.workers == 1
    assert settings.image_size_cap == TIB
    assert settings.user_storage_quota == 0
    assert settings.limit_param_default == 25
    assert settings.api_limit_max == 1000
    assert settings.hashing_algorithm == "sha512"
    assert settings.stores == ("file", "http")
    assert settings.auth_flavor == ""
    assert settings.unknown_options == ()
    assert settings.database_url == f"sqlite:///{(tmp_path / 'data' / 'glimpse.db').absolute()}"
    assert settings.filesystem_store_datadir == tmp_path / "data" / "images"
    assert settings.embedded_database


def test_load_from_file(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, CONF)])
    assert settings.bind_host == "0.0.0.0"
    assert settings.bind_port == 9393
    assert settings.workers == 3
    assert settings.image_size_cap == 1000
    assert settings.user_storage_quota == 10 * 1024**3
    assert settings.image_property_quota == 7
    assert settings.image_tag_quota == -1
    assert settings.limit_param_default == 10
    assert settings.api_limit_max == 50
    assert settings.show_image_direct_url is True
    assert settings.show_multiple_locations is False
    assert settings.hashing_algorithm == "sha256"
    assert settings.enabled_import_methods == ("glance-direct", "web-download")
    assert settings.public_endpoint == "https://images.example.com"
    assert settings.database_url == "sqlite:////srv/glance/glance.db"
    assert settings.stores == ("file",)
    assert settings.default_store == "file"
    assert settings.filesystem_store_datadir == Path("/srv/glance/images")
    assert settings.auth_flavor == "keystone"


def test_glances_options_glimpse_ignores_are_accepted_not_unknown(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, CONF + "[DEFAULT]\nverbos = true\n")])
    assert settings.unknown_options == ("[DEFAULT] verbos",)
    assert settings.no_effect_options == (
        "[database] max_pool_size",
        "[keystone_authtoken] service_token_roles",
    )


def test_logging_options_take_effect_and_leave_the_no_effect_report(tmp_path: Path) -> None:
    extra = (
        "[DEFAULT]\nlog_dir = /var/log/glimpse\nuse_json = true\nuse_stderr = true\nlog_date_format = %H:%M\n"
        "default_log_levels = sqlalchemy=WARN,glimpse.access=ERROR\ngraceful_shutdown_timeout = 5\nlog_color = true\n"
    )
    settings = load_settings([write(tmp_path, CONF + extra)])
    logging = settings.logging
    # an absolute log_file ignores log_dir, as os.path.join (and oslo.log) has it
    assert (logging.debug, logging.path, logging.use_json, logging.use_stderr) == (
        True,
        "/var/log/glance/api.log",
        True,
        True,
    )
    assert logging.default_log_levels == ("sqlalchemy=WARN", "glimpse.access=ERROR")
    assert logging.log_date_format == "%H:%M"
    assert settings.graceful_shutdown_timeout == 5
    assert "[DEFAULT] log_color" in settings.no_effect_options  # oslo.log's, not implemented
    assert not [o for o in settings.no_effect_options if o.split()[1] in ("debug", "log_file", "log_dir", "use_json")]


def test_command_line_logging_overrides_the_files(tmp_path: Path) -> None:
    overrides = {"log_file": "/tmp/x.log", "debug": True, "log_format": "text"}
    conf = write(tmp_path, "[DEFAULT]\ndebug = false\nuse_json = true\nlog_dir = /var/log\n")
    logging = load_settings([conf], None, overrides).logging
    assert (logging.debug, logging.use_json, logging.path) == (True, False, "/tmp/x.log")  # absolute: log_dir unused
    assert load_settings([write(tmp_path, "[DEFAULT]\nlog_dir = /var/log\n")]).logging.path == "/var/log/glimpse.log"


def test_unknown_options_function(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[DEFAULT]\nbind_port = 1\nverbose = true\n"
        "[database]\nconnection = x\nbind_host = y\n"
        "[oslo_policy]\nenforce_scope = true\n",
    )
    # A known DEFAULT option placed in another section is not known there.
    assert unknown_options([path]) == ["[DEFAULT] verbose", "[database] bind_host", "[oslo_policy] enforce_scope"]


def test_known_options_are_not_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\nbind_port = 1\n[glance_store]\nstores = file\n[paste_deploy]\nflavor =\n")
    assert unknown_options([path]) == []


def test_unknown_options_across_files_are_merged_and_deduplicated(tmp_path: Path) -> None:
    a = write(tmp_path, "[DEFAULT]\nfoo = 1\n", "a.conf")
    b = write(tmp_path, "[DEFAULT]\nfoo = 2\nbar = 3\n", "b.conf")
    assert unknown_options([a, b]) == ["[DEFAULT] bar", "[DEFAULT] foo"]


def test_command_line_overrides_win_over_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        [write(tmp_path, CONF)], overrides={"bind_host": "10.0.0.1", "bind_port": 8080, "workers": 5}
    )
    assert (settings.bind_host, settings.bind_port, settings.workers) == ("10.0.0.1", 8080, 5)


def test_none_overrides_do_not_replace_file_values(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, CONF)], overrides={"bind_host": None, "bind_port": None})
    assert (settings.bind_host, settings.bind_port) == ("0.0.0.0", 9393)


def test_data_dir_override_moves_derived_paths(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\ndata_dir = /from/file\n")
    settings = load_settings([path], overrides={"data_dir": str(tmp_path / "cli")})
    assert settings.data_dir == tmp_path / "cli"
    assert settings.filesystem_store_datadir == tmp_path / "cli" / "images"
    assert settings.database_url.endswith(str(tmp_path / "cli" / "glimpse.db"))


def test_data_dir_override_keeps_explicit_store_and_database(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, CONF)], overrides={"data_dir": str(tmp_path / "cli")})
    assert settings.filesystem_store_datadir == Path("/srv/glance/images")
    assert settings.database_url == "sqlite:////srv/glance/glance.db"


def test_data_dir_from_file(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, f"[DEFAULT]\ndata_dir = {tmp_path / 'd'}\n")])
    assert settings.data_dir == tmp_path / "d"
    assert settings.filesystem_store_datadir == tmp_path / "d" / "images"


def test_config_dir(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf.d"
    conf_dir.mkdir()
    (conf_dir / "10-port.conf").write_text("[DEFAULT]\nbind_port = 7000\n")
    (conf_dir / "20-workers.conf").write_text("[DEFAULT]\nworkers = 4\nbind_port = 7001\n")
    (conf_dir / "ignored.txt").write_text("[DEFAULT]\nworkers = 9\n")
    settings = load_settings([write(tmp_path, CONF)], config_dir=str(conf_dir))
    assert settings.workers == 4
    assert settings.bind_port == 7001  # later files win
    assert settings.bind_host == "0.0.0.0"


def test_later_file_wins(tmp_path: Path) -> None:
    a = write(tmp_path, "[DEFAULT]\nbind_port = 1111\n", "a.conf")
    b = write(tmp_path, "[DEFAULT]\nbind_port = 2222\n", "b.conf")
    assert load_settings([a, b]).bind_port == 2222


@pytest.mark.parametrize("text", ["bind_port = 1\n", "[DEFAULT]\nbind_port 1\n"])
def test_malformed_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="Invalid configuration"):
        load_settings([write(tmp_path, text)])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings([str(tmp_path / "nope.conf")])


@pytest.mark.parametrize(
    "text",
    [
        "[DEFAULT]\nbind_port = abc\n",
        "[DEFAULT]\nbind_port = 70000\n",
        "[DEFAULT]\nworkers = 0\n",
        "[DEFAULT]\nimage_size_cap = big\n",
        "[DEFAULT]\nuser_storage_quota = 1.5GB\n",
        "[DEFAULT]\nshow_image_direct_url = maybe\n",
    ],
)
def test_invalid_values(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_settings([write(tmp_path, text)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1024", 1024),
        ("7B", 7),
        ("1KB", 1024),
        ("5MB", 5 * 1024**2),
        ("10GB", 10 * 1024**3),
        ("2TB", 2 * 1024**4),
        ("10gb", 10 * 1024**3),
        (" 10 GB ", 10 * 1024**3),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "-1", "1.5GB", "10G", "10 PB", "ten", "10GBs"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="Invalid size"):
        parse_size(text)


def test_settings_embedded_database_flag() -> None:
    assert Settings(database_url="sqlite:///x.db").embedded_database
    assert not Settings(database_url="mysql+pymysql://u:p@h/glance").embedded_database


def test_import_worker_options(tmp_path: Path) -> None:
    """Glance's [taskflow_executor] max_workers, and the claim timing; staleness stays above two beats."""
    defaults = load_settings([], overrides={"data_dir": str(tmp_path / "data")})
    assert (defaults.import_max_workers, defaults.task_heartbeat_interval, defaults.task_stale_after) == (10, 5.0, 60.0)
    text = "[DEFAULT]\ntask_heartbeat_interval = 4\ntask_stale_after = 5\nimport_step_timeout = 600\n"
    path = write(tmp_path, text + "[taskflow_executor]\nmax_workers = 3\n")
    settings = load_settings([path])
    assert (settings.import_max_workers, settings.task_stale_after, settings.import_step_timeout) == (3, 8.0, 600)


def test_request_bounds_have_glance_and_oslo_middleware_names(tmp_path: Path) -> None:
    defaults = load_settings([], overrides={"data_dir": str(tmp_path)})
    assert (defaults.max_request_body_size, defaults.max_header_line) == (114688, 16384)
    assert defaults.image_property_value_max_length == 65535
    conf = write(
        tmp_path,
        "[DEFAULT]\nmax_header_line = 8192\nimage_property_value_max_length = 1024\n"
        "[oslo_middleware]\nmax_request_body_size = 4096\n",
    )
    settings = load_settings([conf], overrides={"data_dir": str(tmp_path)})
    assert (settings.max_request_body_size, settings.max_header_line) == (4096, 8192)
    assert settings.image_property_value_max_length == 1024
    assert settings.unknown_options == ()


def test_key_manager_options_and_castellans_keystone_by_default(tmp_path: Path) -> None:
    keystone = "[keystone_authtoken]\nwww_authenticate_uri = http://keystone:5000\n"
    settings = load_settings([write(tmp_path, keystone + "[barbican]\nbarbican_endpoint_type = internal\n")])
    assert settings.key_manager["key_manager"] == {"backend": "barbican"}
    assert settings.key_manager["barbican"]["auth_endpoint"] == "http://keystone:5000/v3"
    assert settings.key_manager["barbican"]["barbican_endpoint_type"] == "internal"
    assert settings.no_effect_options == settings.unknown_options == ()
    explicit = "[barbican]\nauth_endpoint = http://ks/identity/v3\n[key_manager]\nbackend = vault\n"
    settings = load_settings([write(tmp_path, keystone + explicit)])
    assert settings.key_manager["barbican"]["auth_endpoint"] == "http://ks/identity/v3"
    assert settings.key_manager["key_manager"] == {"backend": "vault"}
    # castellan's options Glimpse does not pass on stay "accepted, no effect", a typo is unknown.
    settings = load_settings([write(tmp_path, "[barbican]\nnumber_of_retries = 3\nbarbican_endpont = x\n")])
    assert settings.no_effect_options == ("[barbican] number_of_retries",)
    assert settings.unknown_options == ("[barbican] barbican_endpont",)


def test_notification_options_are_read_and_rabbit_options_go_to_oslo_messaging(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    rabbit = "[oslo_messaging_rabbit]\nheartbeat_rate = 3\nrabbit_typo = 1\n"
    conf.write_text(
        "[DEFAULT]\ndefault_publisher_id = image.node1\ndisabled_notifications = image.update, task\n"
        "transport_url = rabbit://guest:guest@127.0.0.1:5672/\n"
        f"[oslo_messaging_notifications]\ndriver = messagingv2\ntopics = notifications\n{rabbit}"
    )
    settings = load_settings([str(conf)], overrides={"data_dir": str(tmp_path)})
    n = settings.notifications
    assert n.enabled and n.drivers == ("messagingv2",) and n.publisher_id == "image.node1"
    assert n.disabled == ("image.update", "task")
    assert not [o for o in settings.no_effect_options if "messaging" in o or "transport_url" in o]
    assert settings.unknown_options == ("[oslo_messaging_rabbit] rabbit_typo",)
    # Without a driver nothing is sent, and the bus's options have no effect.
    conf.write_text(f"[oslo_messaging_notifications]\ndriver = noop\n{rabbit}")
    quiet = load_settings([str(conf)], overrides={"data_dir": str(tmp_path)})
    assert not quiet.notifications.enabled and "[oslo_messaging_rabbit] heartbeat_rate" in quiet.no_effect_options


@pytest.mark.parametrize(
    ("extra", "deduplicating"),
    [
        ("", True),  # unset, locations hidden: on
        ("show_multiple_locations = true\n", False),  # unset, locations shown: Glance's answers, so off
        ("show_image_direct_url = true\n", False),
        ("show_image_direct_url = true\ndeduplicate_image_data = true\n", True),  # chosen: on, admins see locations
        ("deduplicate_image_data = false\n", False),
    ],
)
def test_deduplication_yields_to_shown_locations_unless_chosen(tmp_path: Path, extra: str, deduplicating: bool) -> None:
    settings = load_settings([write(tmp_path, "[DEFAULT]\n" + extra)], overrides={"data_dir": str(tmp_path / "d")})
    assert settings.deduplicate_image_data is deduplicating
