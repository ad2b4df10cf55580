"""Opening the database: URL rules, per-backend connection settings, and migrating to head.

SQLite is the default (one file, nothing to run); PostgreSQL is chosen by URL and driven by
psycopg 3. Migrations are Alembic revisions shipped inside the package, run programmatically,
so an installed dashboard needs no alembic.ini and upgrades itself at start.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

_DATA_HOME = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
DEFAULT_SQLITE_PATH = _DATA_HOME / "hipsense" / "dashboard.sqlite3"

# Any constant works; it only has to be the same for every dashboard instance, so that two
# instances starting at once on an empty PostgreSQL database do not both create the tables.
_MIGRATION_LOCK_KEY = 0x68697073  # "hips"


def database_url(url: str | None) -> str:
    """Return the SQLAlchemy URL for ``url``: the default SQLite file, or PostgreSQL via psycopg 3.

    ``postgresql://`` and ``postgres://`` URLs get the ``+psycopg`` driver (SQLAlchemy would
    otherwise look for psycopg2). A bare file path means SQLite.
    """
    if not url:
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web pages read while ingest writes; the busy timeout makes a second writer
    # (a CLI command, another instance) wait instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str | None) -> Engine:
    """Create the engine for ``url`` (see :func:`database_url`)."""
    resolved = database_url(url)
    if make_url(resolved).get_backend_name() == "sqlite":
        engine = create_engine(resolved, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(resolved, pool_pre_ping=True, pool_size=5, max_overflow=5)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is there already)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("hipsense.dashboard.db") / "migrations"))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Held until this transaction ends; released by PostgreSQL if we die.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
