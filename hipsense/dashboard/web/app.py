"""The Starlette application: routes, middleware, error pages."""

from __future__ import annotations

from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from hipsense.dashboard.web.auth import LoginRequired, SecurityHeaders
from hipsense.dashboard.web.context import DashboardContext
from hipsense.dashboard.web.pages_exports import export_routes
from hipsense.dashboard.web.pages_login import login_routes
from hipsense.dashboard.web.pages_patients import patient_routes
from hipsense.dashboard.web.pages_prescription import prescription_routes
from hipsense.dashboard.web.streams import stream_routes
from hipsense.dashboard.web.templating import make_templates

PATIENT = "/patients/{patient}"


def create_app(context: DashboardContext) -> Starlette:
    templates = make_templates(context)
    login_page, login_submit, logout = login_routes(context, templates)
    patients_page, patients_table, patient_page, monitoring_page = patient_routes(context, templates)
    editor, save = prescription_routes(context, templates)
    export_csv, export_fhir = export_routes(context)
    patient_stream, patients_stream = stream_routes(context)
    script = resources.files("hipsense.dashboard.web").joinpath("assets", "dashboard.js").read_bytes()

    async def dashboard_js(request: Request) -> Response:
        return Response(script, media_type="text/javascript")

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "detail": exc.detail},
                                              status_code=exc.status_code)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", patients_page, methods=["GET"]),
        Route("/patients/table", patients_table, methods=["GET"]),
        Route("/patients/stream", patients_stream, methods=["GET"]),
        Route("/monitoring", monitoring_page, methods=["GET"]),
        Route(PATIENT, patient_page, methods=["GET"]),
        Route(PATIENT + "/stream", patient_stream, methods=["GET"]),
        Route(PATIENT + "/prescription", editor, methods=["GET"]),
        Route(PATIENT + "/prescription", save, methods=["POST"]),
        Route(PATIENT + "/export.csv", export_csv, methods=["GET"]),
        Route(PATIENT + "/export.fhir.json", export_fhir, methods=["GET"]),
        Route("/assets/dashboard.js", dashboard_js, methods=["GET"]),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(LoginRequired, engine=context.engine)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.context = context
    return app
