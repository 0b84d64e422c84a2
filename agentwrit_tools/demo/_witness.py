"""What a scenario saw: every token that left the guard, so the final check can ask the broker about each.

A demo's claim "every credential is dead" is only worth something if it is checked against every token that
existed in the open — the ones presented to the protected API, and the stage or delegated tokens a scenario held
itself. :class:`TokenWitness` keeps them in memory (never in a log, a trace or a page) until the check.
:class:`BackendClient` is how demo tools talk to their protected API: it presents the call's credential — with
a fresh proof of possession per request when the token is key-bound — and records it with the witness on the
way.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..client import AsyncCredential, Credential
from ..errors import ToolError

__all__ = ["Answered", "BackendClient", "BackendRefused", "SeenToken", "TokenWitness"]


@dataclass(frozen=True, slots=True)
class SeenToken:
    """One token and the ids it is shown by. ``token`` never leaves the process."""

    jti: str
    agent_id: str
    scope: tuple[str, ...]
    token: str = field(repr=False)


class TokenWitness:
    """Remembers distinct tokens (by ``jti``), thread-safe."""

    def __init__(self) -> None:
        self._seen: dict[str, SeenToken] = {}
        self._lock = threading.Lock()

    def saw(self, credential: Credential | AsyncCredential) -> None:
        """Remember ``credential``'s token (released or not: the check is what tells)."""
        claims = credential.claims
        seen = SeenToken(claims.jti, claims.sub, tuple(claims.scope), credential.access_token)
        with self._lock:
            self._seen.setdefault(claims.jti, seen)

    def tokens(self) -> list[SeenToken]:
        """Everything seen so far, in the order first seen."""
        with self._lock:
            return list(self._seen.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


class BackendRefused(ToolError):
    """The protected API refused or failed a request; ``status`` and the problem's ``error_code`` say why.

    Its message is written for the model: it names the status and the API's error code, never a token.
    """

    def __init__(self, status: int, error_code: str, detail: str) -> None:
        super().__init__(f"the API answered {status} ({error_code}): {detail}")
        self.status = status
        self.error_code = error_code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Answered:
    """A request sent as it was written (by a probe playing an attacker): the status and the problem's code."""

    status: int
    error_code: str
    detail: str


class BackendClient:
    """A small HTTP client for a demo's protected API: one request per call, presenting the call's credential
    (``credential.headers_for``: DPoP and a proof when key-bound, Bearer otherwise).

    Args:
        base_url: the API's loopback URL.
        witness: records every credential presented.
        timeout: seconds per request.
    """

    def __init__(self, base_url: str, witness: TokenWitness, *, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.witness = witness
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        credential: Credential | AsyncCredential,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request with ``credential``; the decoded JSON body, or :class:`BackendRefused`."""
        self.witness.saw(credential)
        headers = credential.headers_for(method, self.url(path))
        response = self._http.request(method, path, headers=headers, json=json, params=params)
        if response.status_code >= 400:
            problem = _problem(response)
            raise BackendRefused(
                response.status_code, str(problem.get("error_code", "error")), str(problem.get("detail", ""))[:200]
            )
        return response.json()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on the API (what a proof of possession names)."""
        return self.base_url.rstrip("/") + path

    def send_as_is(self, method: str, path: str, headers: Mapping[str, str]) -> Answered:
        """Send exactly these headers (a copied token, a replayed proof): what the API answered."""
        response = self._http.request(method, path, headers=dict(headers))
        problem = _problem(response)
        return Answered(response.status_code, str(problem.get("error_code", "")), str(problem.get("detail", ""))[:200])

    def get(self, path: str, credential: Credential | AsyncCredential, **params: str) -> Any:
        return self.request("GET", path, credential, params=params or None)

    def post(self, path: str, credential: Credential | AsyncCredential, body: Mapping[str, Any]) -> Any:
        return self.request("POST", path, credential, json=body)

    def close(self) -> None:
        self._http.close()


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
