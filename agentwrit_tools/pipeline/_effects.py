"""The vocabulary between the pipeline's I/O-free flows and the sync and async edges that carry them out.

The flows (``_flow``) decide everything — who delegates what to whom, which checks come first, what each
outcome means, what is recorded and what is released — and *yield* effects. An edge (``_drivers``) performs
each one with a :class:`~agentwrit_tools.client.Broker` or an :class:`~agentwrit_tools.client.AsyncBroker` and
sends back an outcome. Outcomes are values, never exceptions, so a flow reaches its clean-up whatever happened.

* :class:`Register` — register a fresh agent for ``scopes`` under a launcher (the broker checks them against
  the launcher's ``allowed_scope``) → :class:`Obtained`.
* :class:`Delegate` — ``credential`` delegates ``scopes`` to agent ``to`` (the broker checks them against the
  credential's scope and its chain's depth) → :class:`Obtained`.
* :class:`Release` — release a credential → :class:`ReleaseOutcome` (the guard's own two: a release is the
  same effect wherever the credential came from).
* :class:`ReleaseLater` — release a credential off the caller's path (the broker client's background runner;
  inline where there is none) → None. :class:`Settle` waits for every such release of the run → None.
* :class:`CloseLaunchers` — end the launch tokens of every launcher the run opened (revoked where the broker
  binds them to the task), recorded in the trace → None.
* :class:`OpenLauncher` — a launcher whose ``allowed_scope`` is ``scopes`` (no I/O until it is used).
* :class:`RunStage` — build the stage's guard task and context, run the body, close the task →
  :class:`StageOutcome`.

Every credential an edge obtains goes into the run's :class:`~agentwrit_tools.pipeline._ledger.Ledger` the
moment it exists, tagged with ``kind`` and ``stage``, so nothing can be minted without being released later.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..guard._effects import Release, ReleaseOutcome

if TYPE_CHECKING:
    from ._ledger import Kind
    from ._stage import Stage
    from ._state import StageHold

__all__ = [
    "CloseLaunchers",
    "Delegate",
    "Effect",
    "Flow",
    "Obtained",
    "OpenLauncher",
    "Register",
    "Release",
    "ReleaseLater",
    "ReleaseOutcome",
    "RunStage",
    "Settle",
    "StageOutcome",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Register:
    """Register a new agent holding exactly ``scopes`` under ``launcher``, living ``ttl`` seconds."""

    launcher: Any = field(repr=False)
    scopes: tuple[str, ...]
    ttl: int
    kind: Kind
    stage: str


@dataclass(frozen=True, slots=True)
class Delegate:
    """Have ``credential`` delegate exactly ``scopes`` to the registered agent ``to``, for ``ttl`` seconds (bound
    to the resource ``audience`` when set). ``to`` is the agent's registration credential, so a key-bound
    delegated token comes with the key it is bound to."""

    credential: Any = field(repr=False)
    to: Any = field(repr=False)
    scopes: tuple[str, ...]
    ttl: int
    kind: Kind
    stage: str
    audience: str | None = None

    def options(self) -> dict[str, Any]:
        """``delegate``'s keyword arguments: ``audience`` only when set."""
        return {"ttl": self.ttl} if self.audience is None else {"ttl": self.ttl, "audience": self.audience}


@dataclass(frozen=True, slots=True)
class OpenLauncher:
    """Make a launcher whose ``allowed_scope`` is ``scopes``; its launch token lives at most ``budget`` seconds."""

    scopes: tuple[str, ...]
    budget: int
    max_ttl: int


@dataclass(frozen=True, slots=True)
class RunStage:
    """Run ``stage``'s body with a context built on ``hold`` (its token, its launcher) and ``value`` as input."""

    stage: Stage = field(repr=False)
    hold: StageHold = field(repr=False)
    value: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReleaseLater:
    """Release ``credential`` off the caller's path: its release must not keep a tool call waiting."""

    credential: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class Settle:
    """Wait until every :class:`ReleaseLater` of the run has gone through (or failed, leaving it live)."""


@dataclass(frozen=True, slots=True)
class CloseLaunchers:
    """End the launch tokens of ``launchers`` (every one the run opened)."""

    launchers: tuple[Any, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Obtained:
    """``credential`` on success, else ``error`` (an AgentWritError); ``started``/``ended`` are monotonic."""

    credential: Any
    error: BaseException | None
    started: float
    ended: float


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """How a stage's body ended: ``value`` when ``ok``; the exception (``Halt`` included) otherwise."""

    status: Literal["ok", "halted", "error", "cancelled"]
    value: Any
    error: BaseException | None
    started: float
    ended: float


Effect = Register | Delegate | Release | ReleaseLater | Settle | CloseLaunchers | OpenLauncher | RunStage
Flow = Generator[Effect, Any, T]
