"""The throwaway PostgreSQL helper starts a real server, serves a database and cleans up."""

from __future__ import annotations

import socket

import psycopg
import pytest

from tests.pgserver import PostgresServer, PostgresUnavailable


def test_start_create_database_query_and_stop() -> None:
    """A started server accepts connections; after stop its port and directory are gone."""
    try:
        server = PostgresServer.start_or_explain()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))
    try:
        data_dir = server.data_dir
        port = server.port
        assert data_dir.is_dir()
        url = server.create_database("pgserver_selftest")
        assert url == f"postgresql://postgres@127.0.0.1:{port}/pgserver_selftest"
        with psycopg.connect(url) as conn:
            row = conn.execute("select version(), current_database()").fetchone()
        assert row is not None
        version, dbname = row
        assert "PostgreSQL" in version
        assert dbname == "pgserver_selftest"
    finally:
        server.stop()

    server.stop()  # idempotent
    assert not data_dir.exists()
    assert not data_dir.parent.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
