"""Jinja2 set-up (autoescaping on) and the helpers every page handler uses."""

from __future__ import annotations

import datetime
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from hipsense.dashboard.accounts.login_sessions import LoginSession
from hipsense.dashboard.accounts.therapists import can_see, get_therapist
from hipsense.dashboard.web import formatting
from hipsense.dashboard.web.context import DashboardContext
from hipsense.protocol import ProtocolError, validate_patient_id


def make_templates(context: DashboardContext) -> Jinja2Templates:
    env = Environment(loader=PackageLoader("hipsense.dashboard.web", "templates"),
                      autoescape=select_autoescape(default=True))
    env.filters["local_time"] = lambda t, fmt="%H:%M:%S": formatting.local_time(t, context.clock, fmt)
    env.filters["percent"] = formatting.percent
    env.filters["number"] = formatting.number
    env.filters["sortable_time"] = formatting.sortable_time
    env.filters["skip_reason"] = formatting.skip_reason
    env.filters["flag_text"] = formatting.flag_text
    env.filters["exercise_name"] = lambda e: formatting.exercise_name(e, context.catalogue)
    env.globals["timedelta"] = datetime.timedelta
    env.globals["clinic_zone"] = context.clock.zone.key
    # Inline, so the login page is styled without a file that anonymous requests could fetch.
    assets = resources.files("hipsense.dashboard.web").joinpath("assets")
    env.globals["stylesheet"] = assets.joinpath("style.css").read_text("utf-8")
    return Jinja2Templates(env=env)


def login_of(request: Request) -> LoginSession:
    """The login attached by the LoginRequired middleware (always there past it)."""
    return request.state.login


async def page_context(request: Request, context: DashboardContext, **values) -> dict:
    login = login_of(request)
    therapist = await run_in_threadpool(get_therapist, context.engine, login.therapist_id)
    return {"therapist": therapist, "csrf_token": login.csrf_token, **values}


async def visible_patient(request: Request, context: DashboardContext) -> str:
    """The ``patient`` path parameter if this therapist may see it; 404 otherwise (an
    unknown id and another therapist's patient look the same, so ids cannot be probed)."""
    patient = request.path_params["patient"]
    try:
        validate_patient_id(patient)
    except ProtocolError:
        raise HTTPException(404, "no such patient") from None
    if not await run_in_threadpool(can_see, context.engine, login_of(request).therapist_id, patient):
        raise HTTPException(404, "no such patient")
    return patient
