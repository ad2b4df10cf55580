"""The shipped Caddyfile on a real Caddy in front of the real dashboard: the app's security
headers reach the browser unchanged, and an XSS attempt renders as text in Chromium.

The only changes to deploy/server/proxy/Caddyfile: the site name becomes plain http on a free
loopback port (no ACME in a test), the upstream is the test's dashboard, the access log goes
to a temporary file, and Caddy's admin endpoint is off. The header block is the shipped one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from hipsense.dashboard.accounts.therapists import add_therapist, assign_patient
from hipsense.dashboard.db import make_engine, migrate
from hipsense.dashboard.web import DashboardContext, create_app
from hipsense.dashboard.web.auth import SecurityHeaders
from tests.dashboard.live_server import LiveServer
from tests.dashboard.web_helpers import PASSWORD
from tests.mosquitto import free_port, wait_for_port

pytestmark = pytest.mark.slow

CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "server" / "proxy" / "Caddyfile"
CADDY = shutil.which("caddy")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
APP_HEADERS = {name.decode(): value.decode() for name, value in SecurityHeaders.HEADERS}
XSS_LABEL = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def render_test_caddyfile(shipped: str, *, port: int, upstream_port: int, log_file: Path) -> str:
    text, n = re.subn(r"(?m)^dashboard\.clinic\.example \{$", f"http://127.0.0.1:{port} {{", shipped)
    assert n == 1, "the shipped Caddyfile must have one `dashboard.clinic.example {` site"
    text, n = re.subn(r"reverse_proxy 127\.0\.0\.1:8080", f"reverse_proxy 127.0.0.1:{upstream_port}", text)
    assert n == 1, "the shipped Caddyfile must proxy to 127.0.0.1:8080"
    text = text.replace("/var/log/caddy/dashboard-access.log", str(log_file))
    return "{\n\tadmin off\n\tauto_https off\n}\n\n" + text


@pytest.fixture
def proxied(tmp_path):
    if CADDY is None:
        pytest.skip("caddy not installed (apt-get install caddy)")
    engine = make_engine(str(tmp_path / "dashboard.sqlite3"))
    migrate(engine)
    add_therapist(engine, "ana", PASSWORD, "Ana")
    assign_patient(engine, "p-0001", "ana", label=XSS_LABEL)
    # behind the proxy the cookie is Secure in production; the test talks plain http to Caddy
    server = LiveServer(create_app(DashboardContext(engine=engine, secure_cookies=False)))
    server.start()
    port = free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(render_test_caddyfile(CADDYFILE.read_text(), port=port, upstream_port=server.port,
                                            log_file=tmp_path / "access.log"))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    caddy = subprocess.Popen([CADDY, "run", "--adapter", "caddyfile", "--config", str(config)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=20)
    except TimeoutError:
        caddy.kill()
        raise RuntimeError(f"caddy did not start: {caddy.communicate()[1].decode(errors='replace')}") from None
    yield f"http://127.0.0.1:{port}", server
    caddy.terminate()
    try:
        caddy.wait(10)
    except subprocess.TimeoutExpired:
        caddy.kill()
        caddy.wait()
    caddy.stderr.close()
    server.stop()
    engine.dispose()


def test_the_apps_security_headers_pass_the_shipped_caddyfile_unchanged(proxied):
    url, _ = proxied
    response = httpx.get(url + "/login", follow_redirects=False, timeout=10)
    assert response.status_code == 200
    for name, value in APP_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # and what Caddy adds itself
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "server" not in {name.lower() for name in response.headers}


def test_an_xss_attempt_renders_as_text_in_chromium_behind_the_proxy(proxied):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    if not Path(CHROMIUM).exists():
        pytest.skip("no system Chromium (apt-get install chromium)")
    url, _ = proxied
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(url + "/login")
            page.fill("#username", "ana")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(url + "/")
            time.sleep(0.5)  # let an onerror handler run, if one had been injected
            assert page.evaluate("window.__xss") is None
            assert XSS_LABEL in page.inner_text("body")  # shown as the text it is
            assert page.locator("img[src=x]").count() == 0
            assert dialogs == []
        finally:
            browser.close()
