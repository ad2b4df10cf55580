"""Fixtures for the dashboard tests: a fresh database on SQLite and on a real PostgreSQL,
a real Mosquitto (the protocol tests' broker helper), and event builders."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets

import pytest

from hipsense.dashboard.db import make_engine, migrate
from hipsense.dashboard.db.tables import metadata
from tests.mosquitto import DASHBOARD_PASSWORD, DASHBOARD_USER

PG_ADMIN_URL = os.environ.get("HIPSENSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PATIENTS = {"p-0001": "pi-secret-1", "p-0002": "pi-secret-2", "p-0003": "pi-secret-3"}


def _pg_admin_connection():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_url():
    """A database of its own on the local PostgreSQL for this test run, dropped at the end."""
    try:
        admin = _pg_admin_connection()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc}); set HIPSENSE_TEST_PG to run these")
    name = f"hipsense_test_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with contextlib.closing(_pg_admin_connection()) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_tables(engine) -> None:
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """A migrated, empty database: a SQLite file, then the test run's PostgreSQL database."""
    if request.param == "sqlite":
        engine = make_engine(str(tmp_path / "dashboard.sqlite3"))
        migrate(engine)
    else:
        engine = make_engine(request.getfixturevalue("postgres_url"))
        _empty_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(str(tmp_path / "dashboard.sqlite3"))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def broker_patients():
    """Three patients, for the per-patient ACL tests (the broker fixture is tests/conftest.py's)."""
    return PATIENTS


def mqtt_settings(broker, *, client_id: str = "", user: str = DASHBOARD_USER, **overrides):
    from hipsense.publish.mqtt import MqttSettings

    password = {DASHBOARD_USER: DASHBOARD_PASSWORD, **PATIENTS}[user]
    return MqttSettings(
        host="127.0.0.1", port=broker.port, client_id=client_id or f"test-{secrets.token_hex(4)}",
        username=user if broker.authenticated else None, password=password if broker.authenticated else None,
        reconnect_min_s=1, reconnect_max_s=1, **overrides,
    )


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)
