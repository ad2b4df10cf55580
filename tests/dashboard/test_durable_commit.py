"""The dashboard acknowledges a result (PUBACK to the broker, and end to end to the Pi, which
then forgets it) right after its commit: that commit must survive a power cut of the server.

SQLite in WAL mode with ``synchronous=NORMAL`` (the engine's setting for the web pages) does not
fsync a commit: a power cut can roll back the last ones, after the Pi was told they are stored.
PostgreSQL with ``synchronous_commit=off`` (a DBA's speed-up) has the same window. The ingest's
own connection therefore insists on ``synchronous=FULL`` / ``synchronous_commit=on``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets

import pytest

from hipsense.dashboard.db import make_engine, migrate
from hipsense.dashboard.event_store import EventStore
from tests.dashboard.conftest import PG_ADMIN_URL, _pg_admin_connection
from tests.dashboard.events import parsed, rep

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone.utc)


def test_sqlite_commits_of_the_ingest_are_fsynced(sqlite_engine):
    store = EventStore(sqlite_engine)
    assert store.write_batch([parsed(rep("p-0001", 1, T0))]).acks == {"p-0001": 1}
    with store._lock:
        level = store._open().exec_driver_sql("PRAGMA synchronous").scalar()
    assert level == 2  # FULL: the WAL is fsynced at every commit
    store.close()


@pytest.fixture
def pg_with_async_commit():
    """A fresh database whose default is ``synchronous_commit = off``."""
    try:
        admin = _pg_admin_connection()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc})")
    name = f"hipsense_async_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    migrate(engine)
    yield engine
    engine.dispose()
    with contextlib.closing(_pg_admin_connection()) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgresql_commits_of_the_ingest_wait_for_the_disk(pg_with_async_commit):
    with pg_with_async_commit.connect() as other:  # what the database hands out by default
        assert other.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    store = EventStore(pg_with_async_commit)
    assert store.write_batch([parsed(rep("p-0001", 1, T0))]).acks == {"p-0001": 1}
    with store._lock:
        assert store._open().exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    store.close()
