"""The vocabulary between the I/O-free per-call flow and the two drivers that carry it out.

The flow (``_flow``) decides everything — validation, rendering, the ceiling check, the gate on verified
claims, what each outcome means and what is recorded — and *yields* effects. A driver performs each effect
(sync: plain calls and a worker thread for timeouts; async: awaits, shields and ``anyio`` timeouts) and sends
back an outcome. Outcomes are values, never exceptions, so the flow stays a straight line and the release
after a run is unconditional.

* :class:`Mint` — mint ``scopes`` for ``ttl`` under the task launcher (async: shielded from cancellation, so a
  credential the broker issues is always seen and released) → :class:`MintOutcome`.
* :class:`Run` — run the body with the credential as its ``credential`` argument and as the context variable
  → :class:`RunOutcome`.
* :class:`Release` — release the credential (async: shielded) → :class:`ReleaseOutcome`.
* :class:`~._approval.Ask` — ask a call's approver, within its timeout →
  :class:`~._approval.ApprovalAnswer`; an exception the approver declares as suspending (``approver.suspends``,
  e.g. LangGraph's interrupt) propagates, so a graph can pause before anything is minted.
* :class:`~._approval.RecordApproval` — record the decision in the broker's audit log →
  :class:`~._approval.RecordOutcome`.

Where a :class:`Mint` gets its credential is the driver's *minter*: by default the task's launcher (registration
under the task ceiling), or any :class:`CallMinter`/:class:`AsyncCallMinter` — the pipeline's mints a call's
credential by delegation from its stage's token, so lineage shows in the verified claims.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..client import AsyncCredential, Claims, Credential
from ..trace import Outcome
from ._approval import Ask, RecordApproval

if TYPE_CHECKING:
    from ._result import ToolResult
    from ._tool import ScopedTool

__all__ = [
    "AsyncCallMinter",
    "CallFlow",
    "CallMinter",
    "Effect",
    "HeldCredential",
    "Mint",
    "MintOutcome",
    "Release",
    "ReleaseOutcome",
    "Run",
    "RunOutcome",
]


class HeldCredential(Protocol):
    """What the flow needs of a credential: its holder and its verified claims."""

    @property
    def agent_id(self) -> str: ...

    @property
    def claims(self) -> Claims: ...


class CallMinter(Protocol):
    """Where a sync task gets a call's credential (a :class:`~agentwrit_tools.client.TaskLauncher` is one).

    ``mint`` must return a credential whose verified scope is exactly ``scope``, or raise an
    :class:`~agentwrit_tools.errors.AgentWritError` (a :class:`~agentwrit_tools.errors.ScopeViolation` becomes a
    ``broker_refused`` denial); the flow still gates on the claims and releases the credential after the call.
    Tools bound to a resource (``audience``) need a minter whose ``mint`` also takes ``audience=``.
    """

    def mint(self, scope: Sequence[str], *, ttl: int | None = None) -> Credential: ...


class AsyncCallMinter(Protocol):
    """The async twin of :class:`CallMinter` (an :class:`~agentwrit_tools.client.AsyncTaskLauncher` is one)."""

    async def mint(self, scope: Sequence[str], *, ttl: int | None = None) -> AsyncCredential: ...


@dataclass(frozen=True, slots=True)
class Mint:
    """Mint a credential for exactly ``scopes``, living ``ttl`` seconds, bound to ``audience`` when set."""

    tool: str
    call_id: str
    scopes: tuple[str, ...]
    ttl: int
    audience: str | None = None

    def options(self) -> dict[str, Any]:
        """The minter's keyword arguments: ``audience`` only when set, so a minter without it still works."""
        return {"ttl": self.ttl} if self.audience is None else {"ttl": self.ttl, "audience": self.audience}


@dataclass(frozen=True, slots=True)
class Run:
    """Run ``tool``'s body with ``kwargs`` (the credential included when it asks), bound by ``timeout``."""

    tool: ScopedTool
    kwargs: dict[str, Any] = field(repr=False)
    credential: Any = field(repr=False)
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Release:
    """Release ``credential`` at the broker."""

    credential: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class MintOutcome:
    """``credential`` on success, else ``error`` (an AgentWritError); ``started``/``ended`` are monotonic."""

    credential: Any
    error: BaseException | None
    started: float
    ended: float


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How the body ended. ``cancelled`` also covers KeyboardInterrupt/SystemExit; the driver re-raises it."""

    status: Outcome
    value: Any
    error: BaseException | None
    started: float
    ended: float


@dataclass(frozen=True, slots=True)
class ReleaseOutcome:
    """``killed``: this release killed the token (False: it was already dead). ``error``: it did not go through."""

    killed: bool
    error: BaseException | None
    at: float


Effect = Mint | Run | Release | Ask | RecordApproval
CallFlow = Generator[Effect, Any, "ToolResult"]
