"""Log in and log out."""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse

from hipsense.dashboard.accounts.login_sessions import end_session, start_session
from hipsense.dashboard.accounts.therapists import authenticate
from hipsense.dashboard.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    new_login_csrf,
    set_login_csrf_cookie,
    set_session_cookie,
)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: "//evil.example" or "https://..." would make an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def login_routes(context, templates):
    async def login_form(request: Request, *, error: str | None = None, status: int = 200):
        token = new_login_csrf()  # a fresh double-submit token each time the form is shown
        next_path = _safe_next(request.query_params.get("next") or (await request.form()).get("next"))
        response = templates.TemplateResponse(request, "login.html", {
            "error": error, "next": next_path, "csrf_token": token}, status_code=status)
        set_login_csrf_cookie(response, token, secure=context.secure_cookies)
        return response

    async def login_page(request: Request):
        return await login_form(request)

    async def login_submit(request: Request):
        form = await request.form()
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))[:256]
        address = request.client.host if request.client else "unknown"
        throttle = context.login_throttle
        wait_s = throttle.retry_after_s(address, username)
        if wait_s > 0:  # refused before the password is even hashed
            minutes = max(1, math.ceil(wait_s / 60))
            response = await login_form(
                request, status=429,
                error=f"Too many failed log-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
            response.headers["Retry-After"] = str(math.ceil(wait_s))
            return response
        therapist = await run_in_threadpool(authenticate, context.engine, username, password)
        if therapist is None:
            throttle.failed(address, username)
            return await login_form(request, error="Wrong user name or password.", status=401)
        throttle.succeeded(address, username)
        token, _ = await run_in_threadpool(start_session, context.engine, therapist.id)
        response = RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)
        set_session_cookie(response, token, secure=context.secure_cookies)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    async def logout(request: Request):
        await run_in_threadpool(end_session, context.engine, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return login_page, login_submit, logout
