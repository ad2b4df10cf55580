"""The patients list, a patient's page, and the remote-monitoring view."""

from __future__ import annotations

import datetime as dt

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from hipsense.dashboard.accounts.therapists import patient_label, patients_of
from hipsense.dashboard.reading.events import last_row_no, load_events
from hipsense.dashboard.reading.dead_letters import undelivered
from hipsense.dashboard.reading.monitoring import (
    BILLING_CODE,
    DAYS_REQUIRED,
    WINDOW_DAYS,
    full_cards,
    monitoring_window,
)
from hipsense.dashboard.reading.overview import device_details, patient_overview
from hipsense.dashboard.reading.prescriptions import current_prescription
from hipsense.dashboard.reading.sessions import session_history
from hipsense.dashboard.reading.trends import weekly_trends
from hipsense.dashboard.web.charts import line_chart
from hipsense.dashboard.web.formatting import describe_event
from hipsense.dashboard.web.templating import login_of, page_context, visible_patient

HISTORY_DAYS = 30


def patient_routes(context, templates):
    def overviews(therapist_id: int):
        return [
            patient_overview(context.engine, patient, label, clock=context.clock, last_live=context.hub.last_live,
                             rules=context.alert_rules)
            for patient, label in patients_of(context.engine, therapist_id)
        ]

    async def patients_page(request: Request):
        rows = await run_in_threadpool(overviews, login_of(request).therapist_id)
        return templates.TemplateResponse(request, "patients.html", await page_context(request, context, rows=rows))

    async def patients_table(request: Request):
        """The table alone, re-fetched by the list page when an update arrives."""
        rows = await run_in_threadpool(overviews, login_of(request).therapist_id)
        return templates.TemplateResponse(request, "_patients_table.html", {"rows": rows})

    def patient_view(patient: str) -> dict:
        engine, clock = context.engine, context.clock
        label = patient_label(engine, patient)
        today_start = clock.day_start(clock.today())
        today_events = load_events(engine, patient, start=today_start)
        trends = weekly_trends(engine, patient, clock=clock)
        labels = [p.week_start.strftime("%d %b") for p in trends]
        return {
            "patient": patient,
            "label": label,
            "overview": patient_overview(engine, patient, label, clock=clock,
                                         last_live=context.hub.last_live, rules=context.alert_rules),
            "device": device_details(engine, patient),
            "live": context.hub.last_live(patient, 10),
            "today": [(e, describe_event(e, context.catalogue)) for e in reversed(today_events)],
            "last_row": last_row_no(engine, patient),
            "sessions": session_history(engine, patient, start=clock.now() - dt.timedelta(days=HISTORY_DAYS)),
            "prescription": current_prescription(engine, patient),
            "charts": [
                line_chart("Range of motion (mean per rep)", labels, [p.mean_rom_deg for p in trends], unit="°",
                           y_min=0, css_class="rom"),
                line_chart("Adherence", labels, [None if p.adherence is None else round(p.adherence * 100)
                                                 for p in trends], unit="%", y_min=0, y_max=100, css_class="adherence"),
                line_chart("Pain (mean, 0–10)", labels, [p.mean_pain for p in trends], y_min=0, y_max=10,
                           css_class="pain"),
            ],
            "today_date": clock.today(),
            "range_start": (clock.today() - dt.timedelta(days=6)).isoformat(),
            "range_end": clock.today().isoformat(),
        }

    async def patient_page(request: Request):
        patient = await visible_patient(request, context)
        values = await run_in_threadpool(patient_view, patient)
        return templates.TemplateResponse(request, "patient.html", await page_context(request, context, **values))

    async def monitoring_page(request: Request):
        def windows():
            mine = patients_of(context.engine, login_of(request).therapist_id)
            labels = dict(mine)
            missing = [(item, labels[item.patient]) for item in undelivered(context.engine, [p for p, _ in mine])]
            cards = [(card, labels[card.patient]) for card in full_cards(context.engine, [p for p, _ in mine])]
            return [(patient, label, monitoring_window(context.engine, patient, clock=context.clock))
                    for patient, label in mine], missing, cards

        rows, missing, cards = await run_in_threadpool(windows)
        return templates.TemplateResponse(request, "monitoring.html", await page_context(
            request, context, rows=rows, missing=missing, full_cards=cards, code=BILLING_CODE,
            required=DAYS_REQUIRED, window=WINDOW_DAYS))

    return patients_page, patients_table, patient_page, monitoring_page
