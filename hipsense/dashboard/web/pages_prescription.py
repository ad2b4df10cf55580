"""The prescription editor: catalogue exercises, doses, sides, order; saving publishes it."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from hipsense.dashboard.accounts.therapists import patient_label
from hipsense.dashboard.prescribing import (
    SIDE_LABELS,
    FormRow,
    MalformedFormError,
    PrescriptionFormError,
    items_from_rows,
    publish_prescription,
    rows_from_form,
)
from hipsense.dashboard.reading.prescriptions import current_prescription
from hipsense.dashboard.web.templating import login_of, page_context, visible_patient

EMPTY_ROWS = 3  # blank rows offered below the current lines ("add row" adds more)


def prescription_routes(context, templates):
    async def render(request: Request, patient: str, rows: list[FormRow], *, problems=(), saved=None, status=200):
        prescription = await run_in_threadpool(current_prescription, context.engine, patient)
        label = await run_in_threadpool(patient_label, context.engine, patient)
        rows = list(rows) + [FormRow()] * EMPTY_ROWS
        catalogue = [(spec.id, spec.name, spec.dose) for spec in context.catalogue.values()]
        values = await page_context(request, context, patient=patient, label=label, rows=rows, catalogue=catalogue,
                                    side_labels=SIDE_LABELS, problems=list(problems), saved=saved,
                                    prescription=prescription, can_publish=context.publish is not None)
        return templates.TemplateResponse(request, "prescription.html", values, status_code=status)

    async def editor(request: Request):
        patient = await visible_patient(request, context)
        prescription = await run_in_threadpool(current_prescription, context.engine, patient)
        rows = [FormRow.from_item(item) for item in prescription.exercises] if prescription else []
        saved = request.query_params.get("saved")
        return await render(request, patient, rows, saved=saved)

    async def save(request: Request):
        patient = await visible_patient(request, context)
        form = await request.form()
        try:
            rows = rows_from_form({key: str(value) for key, value in form.items()})
        except MalformedFormError as exc:
            raise HTTPException(400, str(exc)) from None
        try:
            items = items_from_rows(rows, context.catalogue)
            if context.publish is None:
                raise PrescriptionFormError(["this dashboard runs without a broker; start it with --broker"])
            envelope = await run_in_threadpool(
                publish_prescription, context.engine, patient, items,
                therapist_id=login_of(request).therapist_id, publish=context.publish)
        except PrescriptionFormError as exc:
            return await render(request, patient, [r for r in rows if r.exercise], problems=exc.problems, status=422)
        except Exception as exc:  # the broker did not acknowledge: nothing was recorded
            return await render(request, patient, [r for r in rows if r.exercise], status=502,
                                problems=[f"not sent, the broker did not confirm it: {exc}"])
        version = json.loads(envelope.payload)["version"]
        return RedirectResponse(f"/patients/{patient}/prescription?saved={version}", status_code=303)

    return editor, save
