"""The dashboard's database: tables, engine creation and Alembic migrations."""

from hipsense.dashboard.db.engine import DEFAULT_SQLITE_PATH, database_url, make_engine, migrate

__all__ = ["DEFAULT_SQLITE_PATH", "database_url", "make_engine", "migrate"]
