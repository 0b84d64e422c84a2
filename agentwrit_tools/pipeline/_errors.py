"""Why a pipeline stopped before its stages were done, as typed errors.

::

    AgentWritError
    └── PipelineError                   a pipeline could not hand authority on (everything it minted is released)
        ├── DelegationRefused           a stage asked for a scope its predecessor (or the task ceiling) lacks
        └── DelegationTooDeep           the delegation chain would pass the broker's depth limit

A stage's own exception is not wrapped: the pipeline releases every credential it minted and re-raises it as
it was, so ``except ValueError`` around a run still means what it says. :class:`~agentwrit_tools.pipeline.Halt`
is not an error either: it ends the run normally, with ``status == "halted"``.
"""

from __future__ import annotations

from ..errors import AgentWritError

__all__ = ["DelegationRefused", "DelegationTooDeep", "PipelineError"]


class PipelineError(AgentWritError):
    """A pipeline could not hand authority from one stage to the next. Nothing it minted is left alive."""


def _csv(scopes: tuple[str, ...]) -> str:
    return ", ".join(scopes) if scopes else "nothing"


class DelegationRefused(PipelineError):
    """A stage's scope is not within what the previous stage holds: a handoff can only narrow.

    Raised before anything is minted for the stage. The pipeline checks this itself first, for a clear message;
    the broker refuses the same widening on its own (the stage's agent is registered under a launch token whose
    ``allowed_scope`` is the predecessor's scope, and delegation checks the delegator's token), and then
    ``by_broker`` is True and ``__cause__`` is the broker's :class:`~agentwrit_tools.errors.ScopeViolation`.

    Attributes:
        stage: the stage that was refused.
        source: the stage it would have received its authority from (None: the task ceiling).
        requested: the scopes the stage declared.
        held: what ``source`` holds (its verified scope, or the task ceiling).
        missing: the requested scopes ``held`` does not cover.
        by_broker: the broker refused it (the client-side check did not catch it).
    """

    def __init__(
        self,
        *,
        stage: str,
        source: str | None,
        requested: tuple[str, ...],
        held: tuple[str, ...],
        missing: tuple[str, ...],
        by_broker: bool = False,
    ) -> None:
        giver = f"stage {source!r}" if source is not None else "the task ceiling"
        who = "the broker refused it: " if by_broker else ""
        super().__init__(
            f"stage {stage!r} needs {_csv(missing or requested)}, which {giver} does not hold "
            f"({who}{giver} holds {_csv(held)}); a handoff can only narrow"
        )
        self.stage = stage
        self.source = source
        self.requested = requested
        self.held = held
        self.missing = missing
        self.by_broker = by_broker


class DelegationTooDeep(PipelineError):
    """A delegation would need a longer chain than the broker allows; nothing was sent to the broker.

    The broker refuses to delegate from a token whose chain already holds ``limit`` records. Stage ``n``
    (counting from 1) holds a chain of ``n - 1`` records and its tool calls one of ``n``, so a pipeline has at
    most ``limit`` stages.

    Attributes:
        stage: the stage whose handoff or tool call was refused (None when a pipeline is declared too long).
        depth: the chain length the delegation would have produced.
        limit: the longest chain the broker allows.
    """

    def __init__(self, message: str, *, stage: str | None, depth: int, limit: int) -> None:
        super().__init__(message)
        self.stage = stage
        self.depth = depth
        self.limit = limit
