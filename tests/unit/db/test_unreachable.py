"""Which database errors mean "the database server is away" (a 503, a line a minute), and which stay failures; and a
server that accepts connections but never answers is given up on, not waited for for ever."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from glimpse.db import session
from glimpse.db.session import make_engine, unreachable
from tests.functional.databases import ADMIN_URLS

SERVERS = ["postgresql+psycopg://glimpse@127.0.0.1:{port}/none", "mysql+pymysql://glimpse@127.0.0.1:{port}/none"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.mark.parametrize("url", SERVERS)
def test_a_server_that_refuses_connections_is_unreachable(url: str) -> None:
    with pytest.raises(OperationalError) as refused:
        create_engine(url.format(port=1)).connect()
    assert unreachable(refused.value)


@pytest.mark.parametrize("url", SERVERS)
def test_a_server_that_never_answers_is_given_up_on(
    url: str, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "CONNECT_TIMEOUT", 1)
    started = time.monotonic()
    with pytest.raises(OperationalError) as silent:
        make_engine(url.format(port=silent_port)).connect()
    assert time.monotonic() - started < 10  # libpq and PyMySQL's handshake would wait for ever
    assert unreachable(silent.value)


def test_once_connected_a_mariadb_query_may_take_longer_than_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "CONNECT_TIMEOUT", 1)
    engine = make_engine(ADMIN_URLS["mysql"])
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT SLEEP(2)")).scalar() == 0
    finally:
        engine.dispose()


def test_a_deadlock_or_a_lock_wait_is_no_outage_a_lost_connection_is() -> None:
    import pymysql

    def mariadb(code: int) -> OperationalError:
        return OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, "..."))

    assert not unreachable(mariadb(1213)) and not unreachable(mariadb(1205))  # deadlock, lock wait timeout
    assert unreachable(mariadb(2013)) and unreachable(mariadb(2006)) and unreachable(mariadb(1053))


def test_sqlite_errors_and_other_failures_are_not() -> None:
    with make_engine("sqlite://").connect() as conn, pytest.raises(OperationalError) as missing:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not unreachable(missing.value)  # a bug (or an unmigrated file) stays a 500 with its traceback
    assert not unreachable(ValueError("not a database error"))
