"""Logging a TestClient in, and a populated dashboard for the web tests."""

from __future__ import annotations

import re
import warnings

with warnings.catch_warnings():
    # Starlette 1.x suggests its httpx fork; plain httpx (what pyproject names) still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def logged_in(app, username: str) -> TestClient:
    # https: the session cookie is Secure, and the client (like a browser) keeps it off plain http.
    client = TestClient(app, base_url="https://testserver")
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def page_csrf(client: TestClient, path: str = "/") -> str:
    return csrf_from(client.get(path).text)
