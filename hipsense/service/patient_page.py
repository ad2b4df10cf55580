"""The patient's page: a small web page the Pi serves on the home network.

The patient opens it on a phone (``http://<pi-name>.local:8080/``, or the QR code the install
script prints) to rate pain before and after exercising, see today's plan and progress, and say
"skip today, because …". No account: it is reachable only from the home network, and what it
can do is limited to those three answers about this one patient.

Why the standard library's ``http.server`` and not the dashboard's Starlette/uvicorn: the Pi
installs only ``hipsense[ble,mqtt]`` (no web framework), a Pi Zero 2 has 512 MB and importing
uvicorn + Starlette costs ~15 MB and most of a second there, and this page serves a handful of
requests a day. ``ThreadingHTTPServer`` in one daemon thread, started after the service is
ready, adds ~1 MB and no start-up time; a request never blocks the BLE loop or the counting.

Who may use it:

* the client address must be loopback, private (RFC 1918, IPv6 ULA) or link-local: a port
  forwarded from the internet by mistake still answers 403;
* the ``Host`` header must be an address, ``localhost``, a ``.local`` name or this machine's
  name, so a web site cannot reach the page through DNS rebinding;
* a form may be posted only from the page itself (``Origin`` must match, and a browser's
  ``Sec-Fetch-Site: cross-site`` is refused), so another site cannot answer for the patient.
"""

from __future__ import annotations

import html
import ipaddress
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hipsense.service.checkins import MOMENTS, SKIP_REASONS, CheckInError, CheckIns, TodayBook

__all__ = ["PatientPage", "client_allowed", "host_allowed"]

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 2048
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make Chromium send "Origin: null"
    "Cache-Control": "no-store",
}


def client_allowed(address: str) -> bool:
    """Loopback, private or link-local: the home network, never the internet."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or (ip.is_private and not ip.is_unspecified)


def host_allowed(host_header: str | None, own_names: tuple[str, ...]) -> bool:
    """The ``Host`` a browser sent: an address literal, localhost, a ``.local`` name or ours."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [v6]:port
        host = host[1:host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    host = host.rstrip(".")
    return host == "localhost" or host.endswith(".local") or host in own_names


def _names() -> tuple[str, ...]:
    name = socket.gethostname().lower()
    return (name, name.split(".", 1)[0])


class PatientPage:
    """Serves the page in a daemon thread until :meth:`stop`."""

    def __init__(self, book: TodayBook, checkins: CheckIns, *, host: str = "0.0.0.0", port: int = 8080,
                 exercise_name: Callable[[str], str] | None = None) -> None:
        self.book = book
        self.checkins = checkins
        self.exercise_name = exercise_name or _exercise_name
        self.names = _names()
        handler = type("Handler", (_Handler,), {"page": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="hipsense-patient-page", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> PatientPage:
        self._thread.start()
        log.info("patient page listening", extra={"fields": {"port": self.port}})
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # -- the page --------------------------------------------------------------------------------

    def render(self, notice: str = "", error: str = "") -> str:
        day = self.book.snapshot()
        lines = self.checkins.plan_lines()
        parts = [_HEAD]
        if notice:
            parts.append(f'<p class="notice" role="status">{html.escape(notice)}</p>')
        if error:
            parts.append(f'<p class="error" role="alert">{html.escape(error)}</p>')
        parts.append(self._plan(lines, day))
        parts.append(self._pain("before", "Before exercising: how much pain do you have now?", day))
        parts.append(self._pain("after", "After exercising: how much pain do you have now?", day))
        parts.append(self._skip(day))
        parts.append("</main></body></html>")
        return "\n".join(parts)

    def _plan(self, lines: list[Any], day: dict[str, Any]) -> str:
        out = ['<section id="plan"><h1>Today</h1>']
        if day["skipped"]:
            reason = SKIP_REASONS.get(day["skipped"], day["skipped"])
            out.append(f'<p class="skipped">You are skipping today ({html.escape(reason)}). Your therapist knows.</p>')
        if not lines:
            out.append("<p>No exercises prescribed yet. Your therapist sends them to this Pi.</p></section>")
            return "".join(out)
        out.append('<ol class="plan">')
        for line in lines:
            key = f"{line.exercise}|{line.side}"
            side = {"left": "left leg", "right": "right leg"}.get(line.side, "both legs")
            if line.timed:
                dose = f"{line.sets} × hold {line.hold_s:g} s"
                done, target = day["hold_s"].get(key, 0.0), line.sets * line.hold_s
                progress = f"{done:.0f} of {target:.0f} s held"
            else:
                dose = f"{line.sets} × {line.reps}" + (f", hold {line.hold_s:g} s" if line.hold_s else "")
                done, target = day["reps"].get(key, 0), line.sets * (line.reps or 0)
                progress = f"{done} of {target} reps"
            out.append(
                f'<li><span class="name">{html.escape(self.exercise_name(line.exercise))}</span>'
                f' <span class="side">{side}</span><span class="dose">{html.escape(dose)}</span>'
                f'<progress max="{target:g}" value="{min(done, target):g}"></progress>'
                f'<span class="progress">{progress}</span></li>')
        out.append("</ol>")
        if day["sessions"]:
            adherence = day["adherence"]
            share = f": {adherence * 100:.0f} % of today's plan" if adherence is not None else ""
            out.append(f'<p class="done">Session done{share}. Well done!</p>')
        out.append("</section>")
        return "".join(out)

    @staticmethod
    def _pain(moment: str, question: str, day: dict[str, Any]) -> str:
        said = day["pain"].get(moment)
        note = f'<p class="said">You said {said[0]} at {said[1]}.</p>' if said else ""
        buttons = "".join(
            f'<button type="submit" name="score" value="{n}" class="p{n}" aria-label="pain {n} of 10">{n}</button>'
            for n in range(11))
        return (f'<section id="pain-{moment}"><h2>{html.escape(question)}</h2>{note}'
                f'<form method="post" action="/pain"><input type="hidden" name="moment" value="{moment}">'
                f'<div class="scale">{buttons}</div>'
                '<p class="ends"><span>0 no pain</span><span>10 worst imaginable</span></p></form></section>')

    @staticmethod
    def _skip(day: dict[str, Any]) -> str:
        if day["sessions"] or day["skipped"]:
            return ""
        options = "".join(f'<option value="{key}">{html.escape(text)}</option>' for key, text in SKIP_REASONS.items())
        return ('<section id="skip"><h2>Not exercising today?</h2>'
                '<form method="post" action="/skip"><label for="reason">Skip today, because …</label>'
                f'<select id="reason" name="reason">{options}</select>'
                '<button type="submit" class="skip">Skip today</button></form></section>')


def _exercise_name(exercise: str) -> str:
    from hipsense.exercises.catalogue import load_catalogue

    catalogue = load_catalogue()
    return catalogue[exercise].name if exercise in catalogue else exercise.replace("_", " ")


_NOTICES = {
    "pain-before": "Thank you: your pain before exercising is saved.",
    "pain-after": "Thank you: your pain after exercising is saved.",
    "skip": "Saved: today is skipped. Rest well.",
}


class _Handler(BaseHTTPRequestHandler):
    page: PatientPage
    server_version = "hipsense"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("patient page: " + format, *args)

    def _refused(self) -> bool:
        if not client_allowed(self.client_address[0]):
            log.warning("patient page: refused a client outside the home network",
                        extra={"fields": {"client": self.client_address[0]}})
            self._send(HTTPStatus.FORBIDDEN, "Only from the home network.\n", "text/plain")
            return True
        if not host_allowed(self.headers.get("Host"), self.page.names):
            self._send(HTTPStatus.MISDIRECTED_REQUEST, "Unknown host name.\n", "text/plain")
            return True
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self._refused():
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/":
            self._send(HTTPStatus.NOT_FOUND, "Not found.\n", "text/plain")
            return
        saved = urllib.parse.parse_qs(url.query).get("saved", [""])[0]
        self._send(HTTPStatus.OK, self.page.render(notice=_NOTICES.get(saved, "")))

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, "", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        if self._refused():
            return
        origin = self.headers.get("Origin")
        if self.headers.get("Sec-Fetch-Site") == "cross-site" or (
                origin is not None and origin != f"http://{self.headers.get('Host')}"):
            self._send(HTTPStatus.FORBIDDEN, "Answers come only from this page.\n", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_FORM_BYTES:
            self._send(HTTPStatus.BAD_REQUEST, "Bad form.\n", "text/plain")
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        field = lambda name: form.get(name, [""])[0]  # noqa: E731
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path == "/pain":
                moment, score = field("moment"), field("score")
                if moment not in MOMENTS or not score.isdigit():
                    raise CheckInError("choose a number from 0 to 10")
                self.page.checkins.pain(int(score), moment)
                saved = f"pain-{moment}"
            elif path == "/skip":
                self.page.checkins.skip(field("reason"))
                saved = "skip"
            else:
                self._send(HTTPStatus.NOT_FOUND, "Not found.\n", "text/plain")
                return
        except CheckInError as exc:
            self._send(HTTPStatus.BAD_REQUEST, self.page.render(error=f"Not saved: {exc}."))
            return
        # Post/redirect/get: reloading the page does not answer twice.
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", f"/?saved={saved}")
        self.send_header("Content-Length", "0")
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: HTTPStatus, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hipsense: today</title>
<style>
*{box-sizing:border-box}
body{margin:0;font:18px/1.4 system-ui,sans-serif;color:#1b1b1b;background:#f6f7f9}
main{max-width:34rem;margin:0 auto;padding:.75rem}
h1{font-size:1.5rem;margin:.25rem 0 .5rem}h2{font-size:1.1rem;margin:0 0 .5rem}
section{background:#fff;border-radius:.75rem;padding:.9rem;margin:0 0 .9rem;box-shadow:0 1px 3px #0002}
ol.plan{list-style:none;margin:0;padding:0}
ol.plan li{padding:.5rem 0;border-bottom:1px solid #eee;display:flex;flex-wrap:wrap;gap:.25rem .5rem;align-items:baseline}
ol.plan li:last-child{border-bottom:0}
.name{font-weight:600}.side,.said,.ends{color:#555}.dose{margin-left:auto}
progress{width:100%;height:.9rem}.progress{font-size:.9rem;color:#555}
.scale{display:grid;grid-template-columns:repeat(6,1fr);gap:.4rem}
.scale button{min-height:3rem;font-size:1.2rem;border:0;border-radius:.5rem;color:#fff;cursor:pointer}
.p0,.p1,.p2{background:#2e7d32}.p3,.p4{background:#689f38}.p5,.p6{background:#f9a825;color:#000}
.p7,.p8{background:#ef6c00}.p9,.p10{background:#c62828}
.ends{display:flex;justify-content:space-between;font-size:.85rem;margin:.4rem 0 0}
label{display:block;margin-bottom:.4rem}
select,.skip{width:100%;min-height:3rem;font-size:1.05rem;margin-top:.4rem;border-radius:.5rem}
.skip{background:#455a64;color:#fff;border:0}
.notice{background:#e8f5e9;padding:.75rem;border-radius:.5rem}.error{background:#ffebee;padding:.75rem;border-radius:.5rem}
.done{font-weight:600;color:#2e7d32}.skipped{font-weight:600}
</style></head><body><main>"""
