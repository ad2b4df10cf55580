"""Server-sent events: the patient page's live panel and new results, the list's refresh cue.

Results are read back from the database (rows stored after the last one the page has), not
passed along from ingest, so a page served by one dashboard instance shows results stored by
another; the hub's ``stored`` cue only makes that read happen at once instead of at the next
poll. The SSE ``id`` is the last row number, so a reconnecting browser (Last-Event-ID)
resumes without gaps or repeats.
"""

from __future__ import annotations

import asyncio
import json
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from hipsense.dashboard.accounts.login_sessions import find_session
from hipsense.dashboard.accounts.therapists import patients_of
from hipsense.dashboard.reading.events import events_stored_after
from hipsense.dashboard.reading.overview import device_details
from hipsense.dashboard.web.auth import SESSION_COOKIE
from hipsense.dashboard.web.formatting import describe_event, exercise_name, local_time, sortable_time
from hipsense.dashboard.web.templating import login_of, visible_patient

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse(event: str, data, *, event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


def _resume_point(request: Request) -> int:
    for value in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if value and value.isdigit():
            return int(value)
    return 0


SESSION_RECHECK_S = 30.0


async def _updates(request: Request, context, patient: str | None):
    """Yield hub updates (or None at each poll interval) until the browser goes away, or the
    login ends (a logout in another tab, expiry): a stream must not outlive its session."""
    queue = context.hub.subscribe(patient)
    token = request.cookies.get(SESSION_COOKIE)
    checked = time.monotonic()
    try:
        while not await request.is_disconnected():
            if time.monotonic() - checked > SESSION_RECHECK_S:
                if await run_in_threadpool(find_session, context.engine, token) is None:
                    return
                checked = time.monotonic()
            try:
                yield await asyncio.wait_for(queue.get(), timeout=context.sse_poll_s)
            except TimeoutError:
                yield None
    finally:
        context.hub.unsubscribe(queue)


MY_PATIENTS_RECHECK_S = 10.0  # a patient assigned meanwhile joins the cues this soon


async def table_cues(request: Request, context, therapist_id: int):
    """The patient list's SSE: ``changed`` when one of THIS therapist's patients stored a result
    or sent live data (another therapist's patients are none of this page's business, and their
    activity must not be observable here), at most every two seconds; keep-alives between."""
    mine: set[str] = set()
    mine_at = -MY_PATIENTS_RECHECK_S
    last_cue = 0.0
    pending = False
    last_beat = time.monotonic()
    async for update in _updates(request, context, None):
        if time.monotonic() - mine_at >= MY_PATIENTS_RECHECK_S:
            rows = await run_in_threadpool(patients_of, context.engine, therapist_id)
            mine, mine_at = {patient for patient, _ in rows}, time.monotonic()
        if update is not None and update.kind in ("stored", "live") and update.patient in mine:
            pending = True
        if pending and time.monotonic() - last_cue >= 2.0:
            pending, last_cue = False, time.monotonic()
            yield sse("changed", {})
        if time.monotonic() - last_beat > context.sse_heartbeat_s:
            last_beat = time.monotonic()
            yield ": keep-alive\n\n"


def stream_routes(context):
    async def patient_stream(request: Request):
        patient = await visible_patient(request, context)
        after = _resume_point(request)

        def new_results(row_no: int):
            stored = events_stored_after(context.engine, patient, row_no)
            today = context.clock.today()
            # Only today's go into "Today's results": an outbox flushed after days offline
            # (or a history import) delivers older results now; they belong to their own days.
            return [(e.row_no, {"kind": e.kind, "text": describe_event(e, context.catalogue),
                                "time": local_time(e.t_end, context.clock), "seq": e.seq,
                                "t": sortable_time(e.t_end)} if context.clock.local_date(e.t_end) == today else None)
                    for e in stored]

        async def body():
            nonlocal after
            yield "retry: 2000\n\n"
            live = context.hub.last_live(patient, 10)
            if live is not None:
                yield sse("live", {**live, "exercise_name": exercise_name(live.get("exercise"), context.catalogue)})
            last_beat = time.monotonic()
            async for update in _updates(request, context, patient):
                if update is not None and update.kind == "live":
                    yield sse("live", {**update.data, "exercise_name": exercise_name(update.data.get("exercise"),
                                                                                     context.catalogue)})
                    continue
                for row_no, item in await run_in_threadpool(new_results, after):
                    after = row_no
                    if item is not None:
                        yield sse("result", item, event_id=row_no)
                if update is not None and update.kind == "stored":
                    device = await run_in_threadpool(device_details, context.engine, patient)
                    if device is not None:
                        yield sse("status", {"state": device["state"]})
                if time.monotonic() - last_beat > context.sse_heartbeat_s:
                    last_beat = time.monotonic()
                    yield ": keep-alive\n\n"  # proxies close idle streams

        return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def patients_stream(request: Request):
        """A cue to re-fetch the table, at most every two seconds, when one of the patients changed."""
        therapist_id = login_of(request).therapist_id

        async def body():
            yield "retry: 2000\n\n"
            async for event in table_cues(request, context, therapist_id):
                yield event

        return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)

    return patient_stream, patients_stream
