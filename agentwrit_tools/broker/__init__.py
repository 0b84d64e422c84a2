"""The embedded AgentWrit-compatible broker (needs the ``broker`` extra: ``pip install 'agentwrit-tools[broker]'``).

It serves the wire contract of the AgentWrit broker (v2 API) so that the official SDK and our client work
against it unchanged, plus extensions a real broker lacks: a JWKS endpoint, a revocation feed, cascade
revocation through delegations, ``exp`` capping on delegation, and durable SQLite state.

* :class:`EmbeddedBroker` — run it in-process on a loopback port (tests, demos, notebooks).
* :class:`BrokerSettings` — configuration, also from the reference broker's ``AA_*`` environment variables.
* :func:`create_app` — the ASGI app, for running under any ASGI server.

``BrokerSettings`` imports without the web framework; the other names load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._settings import BrokerSettings

if TYPE_CHECKING:
    from ._embedded import EmbeddedBroker
    from ._http import create_app
    from ._svc_admin import AppCredentials

__all__ = ["AppCredentials", "BrokerSettings", "EmbeddedBroker", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "EmbeddedBroker":
        from ._embedded import EmbeddedBroker

        return EmbeddedBroker
    if name == "create_app":
        from ._http import create_app

        return create_app
    if name == "AppCredentials":
        from ._svc_admin import AppCredentials

        return AppCredentials
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
