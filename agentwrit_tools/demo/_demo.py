"""``Demo``: what a demo folder declares — its domain — so the kit can run it everywhere the same way.

A demo folder holds only its domain: tools, data, model rules, page templates, its protected API. The kit does
the rest once for every demo: start the broker, register the demo's app, serve its API and the stand-in model,
run its scenarios in the terminal (rich or ``--json``), serve its UI with a live trace over Server-Sent Events,
and check after every scenario that no credential it saw is still alive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..offline import RuleSet
from ._scenario import Scenario

if TYPE_CHECKING:
    from ._web import DemoWeb

__all__ = ["BackendContext", "Demo"]


def _left_open(callback: Callable[[], object]) -> Callable[[], object]:
    return callback


@dataclass(frozen=True)
class BackendContext:
    """What a demo's protected API needs to check tokens: where the broker is, and an app identity.

    The app identity is the demo's own (the revocation feed may ask for a bearer); the API never mints with it.

    Attributes:
        on_close: ``on_close(callback)`` runs ``callback`` when the stack stops, after the API stopped serving —
            how a WSGI app, which has no lifespan, closes the clients it opened (its token verifier, say).
        key_bound: the broker binds the demo's tokens to their holder's key (``cnf.jkt``), so the API may demand a
            proof of possession with each; False against a broker that issues bearer tokens only.
    """

    broker_url: str
    client_id: str
    client_secret: str = field(repr=False)
    on_close: Callable[[Callable[[], object]], object] = field(default=_left_open, repr=False, compare=False)
    key_bound: bool = False


@dataclass(frozen=True)
class Demo:
    """A demo's declaration.

    Attributes:
        name: the CLI name (``agentwrit-tools demo <name>``).
        title: the page title and terminal heading.
        orch_id: the orchestrator id of every task it runs.
        app_ceiling: the scopes its app may ever hand out (registered with the broker).
        scenarios: its stories, in the order ``--scenario all`` runs them.
        rules: the stand-in model's rules.
        backend: builds the protected API (an ASGI or WSGI app) for a broker.
        backend_kind: ``asgi`` or ``wsgi``.
        web: builds the UI app around the kit's framework-neutral :class:`DemoWeb` (None: no UI).
        web_kind: ``asgi`` or ``wsgi``.
        templates: the folder of the demo's page templates (the kit's own are always found too).
        proof_of_possession: mint key-bound tokens (``cnf.jkt``): its tools present each with a proof per request,
            and its protected API may demand one.
    """

    name: str
    title: str
    orch_id: str
    app_ceiling: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    rules: RuleSet
    backend: Callable[[BackendContext], Any]
    backend_kind: Literal["asgi", "wsgi"]
    web: Callable[[DemoWeb], Any] | None = None
    web_kind: Literal["asgi", "wsgi"] = "asgi"
    templates: Path | None = None
    proof_of_possession: bool = False

    def __post_init__(self) -> None:
        names = [s.name for s in self.scenarios]
        if len(set(names)) != len(names):
            raise ValueError(f"demo {self.name!r} has two scenarios with one name")
        if "all" in names:
            raise ValueError("'all' is reserved for running every scenario")

    def scenario(self, name: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise KeyError(name)

    def select(self, name: str) -> Sequence[Scenario]:
        """The scenarios ``--scenario name`` means (``all``: every one); KeyError for an unknown name."""
        return self.scenarios if name == "all" else (self.scenario(name),)
