"""``StandInModel``: the stand-in served on a loopback port for the lifetime of a ``with`` block.

Tests, notebooks and demos point the real ``openai`` client (or LangChain's OpenAI chat model) at
:attr:`StandInModel.base_url` and run unchanged, with no network and no API key.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from ._errors import StandInError
from ._http import StandInHTTPServer
from ._labels import MODEL_ID, banner
from ._planner import Planner
from ._rules import Rule, RuleSet
from ._rulesfile import load_rules
from ._settings import STAND_IN_API_KEY, ModelSettings

__all__ = ["StandInModel"]

logger = logging.getLogger("agentwrit_tools.offline")

RulesLike = RuleSet | Iterable[Rule] | str | os.PathLike[str]


def _as_rule_set(rules: RulesLike) -> RuleSet:
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, str | os.PathLike):
        return load_rules(rules)
    return RuleSet(tuple(rules))


def _loopback_family(host: str) -> socket.AddressFamily:
    """Refuse anything but loopback: a program posing as a model has no business on a network interface."""
    if host == "localhost":
        return socket.AF_INET
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise StandInError(f"the stand-in model listens on loopback only (127.0.0.1, ::1 or localhost), not {host!r}")
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


class StandInModel:
    """A deterministic, rule-based stand-in for an OpenAI model, served on loopback. Not a language model.

    Example::

        with StandInModel(rules) as model:
            client = openai.OpenAI(base_url=model.base_url, api_key="stand-in")
            client.chat.completions.create(model=model.model, messages=[...], tools=[...])

    Args:
        rules: a :class:`RuleSet`, some :class:`Rule` objects, or the path of a rules JSON file.
        host: a loopback address; anything else is refused.
        port: the port, ``0`` for any free one (read it back from :attr:`port`).
        max_recorded: how many request bodies :attr:`requests` keeps.

    Raises:
        RulesError: the rules file is missing or malformed.
        StandInError: the host is not loopback (here), or the port cannot be bound (on :meth:`start`).
    """

    def __init__(
        self, rules: RulesLike = (), *, host: str = "127.0.0.1", port: int = 0, max_recorded: int = 256
    ) -> None:
        self.rules = _as_rule_set(rules)
        self.host = host
        self._family = _loopback_family(host)
        self._requested_port = port
        self._max_recorded = max_recorded
        self._server: StandInHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandInModel:
        """Bind and serve in a background thread; returns ``self`` so ``model = StandInModel(r).start()`` works."""
        if self._server is not None:
            return self
        bind_host = "127.0.0.1" if self.host == "localhost" else self.host
        try:
            server = StandInHTTPServer(
                (bind_host, self._requested_port),
                Planner(self.rules),
                family=self._family,
                max_recorded=self._max_recorded,
            )
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or "cannot bind")
            raise StandInError(f"cannot listen on {self.host}:{self._requested_port}: {reason}") from None
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="agentwrit-stand-in", daemon=True
        )
        self._thread.start()
        logger.info(banner(self.base_url, len(self.rules.rules)))
        return self

    def close(self) -> None:
        """Stop serving and release the port, connections and threads. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join()
        server.close()

    def __enter__(self) -> StandInModel:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _running(self) -> StandInHTTPServer:
        if self._server is None:
            raise StandInError("the stand-in model is not running; use it in a 'with' block or call start()")
        return self._server

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        return self._running().server_port

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` of this stand-in, ending in ``/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def model(self) -> str:
        """The model id the stand-in reports (requests may name any model)."""
        return MODEL_ID

    @property
    def settings(self) -> ModelSettings:
        """Client settings pointing at this stand-in, shaped like :func:`model_settings_from_env`'s."""
        return ModelSettings(base_url=self.base_url, api_key=STAND_IN_API_KEY, model=MODEL_ID, stand_in=True)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far, oldest first (a bounded copy: at most ``max_recorded``)."""
        return self._running().recorded()

    def clear_requests(self) -> None:
        """Forget the recorded bodies, e.g. between the steps of a demo."""
        self._running().clear_recorded()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "not running"
        return f"<StandInModel {MODEL_ID!r} (rule-based, not a language model) {where}, {len(self.rules.rules)} rules>"
