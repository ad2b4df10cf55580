"""Deny by default: every request needs a login session, every POST a CSRF token.

A pure ASGI middleware (not per-route decorators) so that a new route cannot forget it. The
only exception is ``/login``, whose POST is protected by a double-submit token: a random
value in a SameSite=Strict cookie that the form must repeat.

Anonymous requests get ``303 → /login`` when they are a page load (GET of HTML), ``401``
otherwise (SSE, exports, POSTs). A POST without the right token gets ``403``.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from hipsense.dashboard.accounts.login_sessions import SESSION_LIFETIME, find_session

SESSION_COOKIE = "hipsense_session"
LOGIN_CSRF_COOKIE = "hipsense_login_csrf"
PUBLIC_PATHS = frozenset({"/login"})
MAX_FORM_BYTES = 256 * 1024
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def set_session_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()), path="/",
                        httponly=True, secure=secure, samesite="strict")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def set_login_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/login", httponly=True, secure=secure,
                        samesite="strict")


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


async def _read_body(receive) -> tuple[bytes, list[dict]]:
    """Read the whole request body (bounded) and keep the messages to replay them."""
    messages, body = [], b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            raise ValueError("form too large")
        if not message.get("more_body", False):
            break
    return body, messages


def _replaying(messages: list[dict], receive):
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _submitted_csrf(request: Request, body: bytes) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("utf-8", "replace")).get("csrf_token")
        return values[0] if values else None
    return None


class LoginRequired:
    """ASGI middleware: attach ``request.state.login`` or refuse the request."""

    def __init__(self, app, *, engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"]
        unsafe = scope["method"] in _UNSAFE_METHODS
        if path in PUBLIC_PATHS:
            if unsafe:
                receive = await self._check_csrf(request, receive, send, request.cookies.get(LOGIN_CSRF_COOKIE))
                if receive is None:
                    return
            await self.app(scope, receive, send)
            return
        login = await run_in_threadpool(find_session, self.engine, request.cookies.get(SESSION_COOKIE))
        if login is None:
            await self._refuse_anonymous(request)(scope, receive, send)
            return
        if unsafe:
            receive = await self._check_csrf(request, receive, send, login.csrf_token)
            if receive is None:
                return
        scope.setdefault("state", {})["login"] = login
        await self.app(scope, receive, send)

    @staticmethod
    def _refuse_anonymous(request: Request) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if wants_page:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return PlainTextResponse("login required", status_code=401, headers={"WWW-Authenticate": "Cookie"})

    @staticmethod
    async def _check_csrf(request: Request, receive, send, expected: str | None):
        """Return a receive callable that replays the body, or None after refusing."""
        try:
            body, messages = await _read_body(receive)
        except ValueError:
            await PlainTextResponse("form too large", status_code=413)(request.scope, receive, send)
            return None
        if not tokens_match(expected, _submitted_csrf(request, body)):
            await PlainTextResponse("missing or wrong CSRF token; reload the page", status_code=403)(
                request.scope, receive, send)
            return None
        return _replaying(messages, receive)


class SecurityHeaders:
    """No framing, no sniffing, no caching of patient pages, scripts only from this origin."""

    HEADERS = [
        (b"content-security-policy",
         b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
         b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"cache-control", b"no-store"),
    ]

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    header for header in self.HEADERS if header[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)
