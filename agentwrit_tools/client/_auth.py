"""``CredentialAuth``: an httpx auth that presents a credential, with a fresh proof per request when it is key-bound.

::

    with broker.mint("read:records:P-1042", orch_id="medassist", task_id="visit-77") as cred:
        httpx.get(url, auth=CredentialAuth(cred))          # DPoP + proof when bound, Bearer otherwise

Each request (a redirect or a retry included: httpx runs the flow again) gets headers from
:meth:`~agentwrit_tools.client.Credential.headers_for` for its own method and URL, so a proof is never sent twice.
The flow does no I/O, so the same object works with ``httpx.Client`` and ``httpx.AsyncClient``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

from ._credential import CredentialBase

__all__ = ["CredentialAuth"]


class CredentialAuth(httpx.Auth):
    """Present ``credential`` on every request of an httpx client (see the module docstring)."""

    def __init__(self, credential: CredentialBase[Any]) -> None:
        self.credential = credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url = request.url.copy_with(query=None, fragment=None)
        request.headers.update(self.credential.headers_for(request.method, str(url)))
        yield request

    def __repr__(self) -> str:
        return f"CredentialAuth({self.credential!r})"
