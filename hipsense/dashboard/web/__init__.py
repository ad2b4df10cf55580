"""The web front end: Starlette routes, Jinja2 pages, SSE streams, login and CSRF."""

from hipsense.dashboard.web.app import create_app
from hipsense.dashboard.web.context import DashboardContext

__all__ = ["DashboardContext", "create_app"]
