"""Exports of one session or a date range: CSV, and FHIR R4 (a Bundle of Observations)."""

from __future__ import annotations

import datetime as dt
import json
import re

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hipsense.dashboard.exports.csv_export import events_to_csv
from hipsense.dashboard.exports.fhir import events_to_bundle
from hipsense.dashboard.reading.events import load_events
from hipsense.dashboard.web.templating import visible_patient

MAX_RANGE_DAYS = 366
_SESSION_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def _selection(request: Request, context) -> tuple[dict, str]:
    """``?session=<id>`` or ``?start=YYYY-MM-DD&end=YYYY-MM-DD`` (local days, end included)."""
    params = request.query_params
    session_id = params.get("session")
    if session_id:
        if not _SESSION_ID.fullmatch(session_id):  # what the protocol's schema allows (common.json)
            raise HTTPException(400, "session must be a session id (1-64 characters of A-Z, a-z, 0-9, _ and -)")
        return {"session_id": session_id}, f"session-{session_id}"
    try:
        first = dt.date.fromisoformat(params["start"])
        last = dt.date.fromisoformat(params["end"])
    except (KeyError, ValueError):
        raise HTTPException(400, "give ?session=<id>, or ?start=YYYY-MM-DD&end=YYYY-MM-DD") from None
    if last < first or (last - first).days >= MAX_RANGE_DAYS:
        raise HTTPException(400, f"the range must run forwards and span at most {MAX_RANGE_DAYS} days")
    clock = context.clock
    try:
        return {"start": clock.day_start(first), "end": clock.day_start(last + dt.timedelta(days=1))}, f"{first}_{last}"
    except OverflowError:  # a day at the very end of the calendar
        raise HTTPException(400, "the range is outside the calendar this dashboard can show") from None


def export_routes(context):
    async def selected_events(request: Request):
        patient = await visible_patient(request, context)
        selection, name = _selection(request, context)
        stored = await run_in_threadpool(lambda: load_events(context.engine, patient, **selection))
        return patient, stored, f"hipsense-{patient}-{name}"

    async def export_csv(request: Request):
        _, stored, name = await selected_events(request)
        return Response(events_to_csv(stored), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})

    async def export_fhir(request: Request):
        _, stored, name = await selected_events(request)
        bundle = events_to_bundle(stored, generated_at=context.clock.now())
        return Response(json.dumps(bundle, indent=1, ensure_ascii=False), media_type="application/fhir+json",
                        headers={"Content-Disposition": f'attachment; filename="{name}.fhir.json"'})

    return export_csv, export_fhir
