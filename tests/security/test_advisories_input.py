"""Advisory 8: loose input handling.

JSON endpoints accepted bodies without ``Content-Type: application/json`` (a form or text body is what a browser
sends cross-site without a preflight); a secret with a trailing NUL authenticated (scrypt's HMAC pads keys with
zeros); error bodies echoed the request path and ids back. Now: 415 for anything but JSON, NUL never matches, and
problems carry the route template, never text from the URL.
"""

from __future__ import annotations

from typing import Any

import pytest
from security_support import Genuine, Wire, bearer, refused, served

MARKER = "zz-echo-\u202e-marker"

JSON_ENDPOINTS: list[tuple[str, str, str]] = [
    ("POST", "/v1/admin/auth", "none"),
    ("POST", "/v1/app/auth", "none"),
    ("POST", "/v1/register", "none"),
    ("POST", "/v1/token/validate", "none"),
    ("POST", "/v1/delegate", "agent"),
    ("POST", "/v1/revoke", "admin"),
    ("POST", "/v1/admin/apps", "admin"),
    ("POST", "/v1/admin/launch-tokens", "admin"),
    ("POST", "/v1/app/launch-tokens", "app"),
]
"""Every endpoint that reads a JSON body, with the principal whose bearer gets the request that far."""

NOT_JSON: list[dict[str, str]] = [
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "multipart/form-data; boundary=x"},
    {"Content-Type": "application/jsonp"},
    {},
]


def _auth(genuine: Genuine, who: str) -> dict[str, str]:
    token = {"agent": genuine.agent, "admin": genuine.admin, "app": genuine.app}.get(who)
    return bearer(token) if token else {}


@pytest.mark.parametrize(("method", "path", "who"), JSON_ENDPOINTS)
def test_json_endpoints_refuse_bodies_that_are_not_declared_json(
    wire: Wire, genuine: Genuine, method: str, path: str, who: str
) -> None:
    content = b'{"token": "x", "secret": "x", "level": "task", "target": "x"}'
    for headers in NOT_JSON:
        resp = wire.client.request(method, path, content=content, headers={**headers, **_auth(genuine, who)})
        refused("input", resp, 415, "unsupported_media_type")
    declared = {"Content-Type": "application/json; charset=utf-8", **_auth(genuine, who)}
    resp = wire.client.request(method, path, content=content, headers=declared)
    assert resp.status_code != 415, resp.text
    served("input", wire.post("/v1/token/validate", json={"token": genuine.agent}))


def test_a_secret_with_a_trailing_nul_does_not_authenticate(wire: Wire) -> None:
    for suffix in ("\x00", "\x00\x00", "\x00x"):
        resp = wire.post("/v1/admin/auth", json={"secret": wire.admin_secret + suffix})
        assert resp.status_code in (400, 401), resp.text
        assert "access_token" not in resp.text
        refused("input", resp, resp.status_code)
    app = wire.create_app(["read:records:*"])
    refused("input", wire.app_login(app, app.client_secret + "\x00"), 400, "invalid_request")
    served("input", wire.admin_login())
    served("input", wire.app_login(app))


def test_the_admin_secret_check_itself_refuses_a_nul_suffix() -> None:
    """The root cause, beneath the HTTP edge: scrypt derives the same hash for ``s`` and ``s\\0``."""
    import hashlib

    from agentwrit_tools.broker._secrets import hash_admin_secret, verify_admin_secret

    salt = b"0123456789abcdef"
    same = [hashlib.scrypt(s, salt=salt, n=2**10, r=8, p=1) for s in (b"s3cret", b"s3cret\x00")]
    assert same[0] == same[1]  # the padding is real
    stored = hash_admin_secret("s3cret")
    assert verify_admin_secret("s3cret", stored)
    assert not verify_admin_secret("s3cret\x00", stored)


def _no_echo(body: Any) -> None:
    assert MARKER not in str(body)
    assert "zz-echo" not in str(body)


def test_error_bodies_do_not_echo_the_path_or_ids(wire: Wire) -> None:
    cases = [
        (wire.get(f"/v1/{MARKER}"), 404, ""),
        (wire.get(f"/v1/admin/apps/{MARKER}", headers=wire.admin()), 404, "/v1/admin/apps/{app_id}"),
        (wire.client.put(f"/v1/admin/apps/{MARKER}", json={}, headers=wire.admin()), 404, "/v1/admin/apps/{app_id}"),
        (wire.client.delete(f"/v1/admin/apps/{MARKER}", headers=wire.admin()), 404, "/v1/admin/apps/{app_id}"),
        (wire.client.request("PATCH", f"/v1/token/validate?{MARKER}=1"), 405, "/v1/token/validate"),
    ]
    # A method the HTTP parser does not know: h11 passes it on (405 for the route), httptools refuses to parse the
    # request at all (400, no route matched). Either way a problem document that echoes none of it.
    brew = wire.client.request("BREW", f"/v1/health?{MARKER}=1")
    cases.append((brew, 405, "/v1/health") if brew.status_code == 405 else (brew, 400, ""))
    for resp, status, instance in cases:
        assert resp.status_code == status, resp.text
        body = resp.json()
        _no_echo(body)
        assert body["instance"] == instance
        assert "BREW" not in body["detail"]
        refused("input", resp, status, routed=bool(instance))
    # The legitimate 404 still says what is wrong, and a problem on a fixed route names that route.
    app = wire.create_app(["read:records:*"])
    served("input", wire.get(f"/v1/admin/apps/{app.app_id}", headers=wire.admin()))
    assert wire.post("/v1/token/validate", json={}).json()["instance"] == "/v1/token/validate"
