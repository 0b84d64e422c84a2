"""``DemoStack``: everything one demo needs running — broker, app, protected API, model — and stopped again.

Defaults are local and offline: the embedded broker on a loopback port and the rule-based stand-in model. The
usual variables switch either to the real thing: ``AGENTWRIT_BROKER_URL`` with ``AGENTWRIT_ADMIN_SECRET`` (the
demo registers its app there), and ``OPENAI_API_KEY`` / ``LLM_BASE_URL`` / ``LLM_MODEL`` for a real model.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..client import Broker
from ..errors import AgentWritError, BrokerUnavailable, TransportError
from ..guard import Approver
from ..offline import ModelSettings, StandInModel, model_settings_from_env
from ._approvals import flag_approver
from ._demo import BackendContext, Demo
from ._servers import DemoError, LoopbackServer

if TYPE_CHECKING:
    from openai import OpenAI

__all__ = ["DemoStack"]


class DemoStack:
    """Start with ``with DemoStack(demo) as stack:``; everything started is stopped on exit, in reverse order.

    Attributes:
        broker_url: where the broker is.
        broker_where: a line for people: which broker, embedded or external.
        broker: the demo app's client (mints every credential).
        operator: the operator's client (revocation, audit).
        backend_url: the protected API.
        model: the model settings (``model.stand_in`` says whether it is the stand-in).
        openai: an ``openai.OpenAI`` client for that model.
        approver: who answers the demo's approval requests: a flag's fixed answer in the terminal (yes by default),
            the page's Approve/Deny buttons when served (see :mod:`._approvals`).
    """

    def __init__(self, demo: Demo, *, environ: Mapping[str, str] | None = None) -> None:
        self.demo = demo
        self._env = os.environ if environ is None else environ
        self._stack = contextlib.ExitStack()
        self.broker_url = ""
        self.broker_where = ""
        self.backend_url = ""
        self.approver: Approver = flag_approver(True)

    def start(self) -> DemoStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        url, admin_secret = self._env.get("AGENTWRIT_BROKER_URL"), self._env.get("AGENTWRIT_ADMIN_SECRET")
        if url and not admin_secret:
            raise DemoError("AGENTWRIT_BROKER_URL is set but AGENTWRIT_ADMIN_SECRET is not: the demo registers its app")
        if url and admin_secret:
            self.broker_url, self.broker_where = url.rstrip("/"), f"the AgentWrit broker at {url}"
        else:
            from ..broker import EmbeddedBroker

            embedded = self._stack.enter_context(EmbeddedBroker())
            self.broker_url, admin_secret = embedded.url, embedded.admin_secret
            self.broker_where = f"the embedded broker at {embedded.url} (SQLite, loopback)"
        self.operator = self._stack.enter_context(Broker(self.broker_url, admin_secret=admin_secret))
        try:
            app = self.operator.admin.create_app(
                f"{self.demo.name}-{secrets.token_hex(3)}", list(self.demo.app_ceiling)
            )
        except (BrokerUnavailable, TransportError):
            raise DemoError(f"the broker at {self.broker_url} does not answer") from None
        except AgentWritError as exc:
            raise DemoError(f"the broker at {self.broker_url} refused to register the demo's app: {exc}") from None
        if app.client_secret is None:  # pragma: no cover - the broker always answers with the secret once
            raise DemoError("the broker registered the demo's app without returning its client secret")
        self.app_id = app.app_id
        pop = self.demo.proof_of_possession
        self.broker = self._stack.enter_context(
            Broker(self.broker_url, app.client_id, app.client_secret, proof_of_possession=pop)
        )
        self.key_bound = pop and self._binds_keys()
        context = BackendContext(
            self.broker_url, app.client_id, app.client_secret, on_close=self._stack.callback, key_bound=self.key_bound
        )
        backend = self.demo.backend(context)
        server = LoopbackServer(backend, kind=self.demo.backend_kind, name=f"{self.demo.name} API")
        self.backend_url = self._stack.enter_context(server).url
        self.model = self._model()
        from openai import OpenAI

        self.openai: OpenAI = OpenAI(base_url=self.model.base_url, api_key=self.model.api_key, max_retries=0)
        self._stack.callback(self.openai.close)

    def _binds_keys(self) -> bool:
        """Whether this broker binds tokens to their holder's key (an extension): one probe credential, released.

        A reference broker issues bearer tokens whatever is asked; the demo's API must then accept bearer tokens,
        or nothing would work against it.
        """
        template = self.demo.app_ceiling[0]
        probe_scope = template[:-1] + "probe" if template.endswith(":*") else template
        with self.broker.mint(probe_scope, orch_id=self.demo.orch_id, task_id="start-up-probe", ttl=5) as probe:
            return probe.key_bound

    def _model(self) -> ModelSettings:
        settings = model_settings_from_env(self._env)
        if settings is not None:
            return settings
        stand_in = self._stack.enter_context(StandInModel(self.demo.rules))
        return stand_in.settings

    @property
    def model_where(self) -> str:
        if self.model.stand_in:
            return "the stand-in model (rule-based, not a language model; set OPENAI_API_KEY or LLM_BASE_URL for one)"
        where = self.model.base_url or "OpenAI's default endpoint"
        return f"the model {self.model.model} at {where}"

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> DemoStack:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DemoStack({self.demo.name!r}, broker={self.broker_url!r}, backend={self.backend_url!r})"

    def describe(self) -> dict[str, Any]:
        return {"broker": self.broker_where, "model": self.model_where, "api": self.backend_url}
