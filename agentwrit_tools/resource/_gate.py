"""The decision core: from a request and a verification result to allow or refuse — no I/O.

A check has one step that needs I/O (verifying the token against the broker), so it is split around it:
:meth:`Gate.begin` reads the request and either decides at once (no usable token) or hands back a
:class:`Pending` holding the token; the caller verifies it however it likes (sync, async, in a thread) and
:meth:`Pending.finish` decides from the result. The sync and async edges in ``_edges`` are the only code that
touches a verifier, and they are four lines each.

Order matters: the token is verified *before* the required scope is rendered, so a crafted parameter
(``/records/*``) from a verified caller is refused and recorded under that caller's agent id, and nothing is
decided on unverified claims. A key-bound token (verified ``cnf.jkt``) must then come with a proof of possession
by its key (``_proof``) — a thief learns nothing about scopes — and a verified token must cover every required
scope.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..client import Claims
from ..errors import BrokerError, TokenInvalid, TokenRevoked
from ..scopes import is_valid_scope, uncovered
from . import _problems as problems
from ._access import DEFAULT, AccessLog, AccessRecord, emit, hooks_from
from ._problems import Refusal
from ._proof import Possession, ProofRules
from ._request import RequestFacts, Requirement, presented_token

__all__ = ["Gate", "Pending", "Verdict", "VerifyResult", "conclude"]

VerifyResult = Claims | TokenInvalid | BrokerError
"""What verifying a token can end in: its claims, or the two failures a check answers (401/403, 503)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision about one request.

    Attributes:
        refusal: why it was refused; None when allowed.
        claims: the verified claims (also present when a verified token lacked the scope); None otherwise.
        record: what was given to the access log.
    """

    refusal: Refusal | None
    claims: Claims | None
    record: AccessRecord

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def required(self) -> tuple[str, ...]:
        return self.record.required


class Gate:
    """One protected operation: the scopes it requires, where its access records go, and its realm.

    Args:
        scopes: a template, several templates, or a :class:`Requirement`.
        access_log: a hook, several hooks, or None; by default one INFO line per request on the
            ``agentwrit_tools.resource.access`` logger.
        realm: the ``realm`` of ``WWW-Authenticate`` challenges (none by default).
        clock: wall-clock seconds, for access records.
        possession: proofs of possession: ``"auto"`` (a key-bound token needs one), ``"required"`` (only
            key-bound tokens are accepted) or :class:`ProofRules`.
    """

    def __init__(
        self,
        scopes: str | Sequence[str] | Requirement,
        *,
        access_log: AccessLog | Iterable[AccessLog] | None = DEFAULT,
        realm: str | None = None,
        clock: Callable[[], float] = time.time,
        possession: ProofRules | Possession = "auto",
    ) -> None:
        self.requirement = Requirement.coerce(scopes)
        self.hooks = hooks_from(access_log)
        self.realm = realm
        self.proof = ProofRules.coerce(possession)
        self._clock = clock

    def __repr__(self) -> str:
        return f"Gate({[t.template for t in self.requirement.templates]!r})"

    def begin(self, facts: RequestFacts) -> Verdict | Pending:
        """Decide at once when the request carries no usable token; otherwise ask for the token's verification."""
        presented = presented_token(facts.authorization)
        if isinstance(presented, Refusal):
            if self.proof.required and presented.status == 401:  # tell the caller which scheme is wanted
                presented = dataclasses.replace(presented, scheme="DPoP")
            return self._conclude(facts, presented, None)
        scheme, token = presented
        return Pending(self, facts, token, scheme)

    def finish(self, facts: RequestFacts, result: VerifyResult, token: str = "", scheme: str = "bearer") -> Verdict:
        """Decide from the verification result: refuse a failed one, then a key-bound token without its proof,
        then require coverage of the rendered scopes (``token``/``scheme``: as presented)."""
        if isinstance(result, TokenRevoked):
            return self._conclude(facts, problems.revoked(result.reason), None)
        if isinstance(result, TokenInvalid):
            return self._conclude(facts, problems.invalid_token(result.reason), None)
        if isinstance(result, BrokerError):
            return self._conclude(facts, problems.unavailable(type(result).__name__), None)
        claims = result
        not_held = self.proof.check(claims, scheme, token, facts)
        if not_held is not None:  # the presenter is not the holder: refused before any scope is looked at, and
            # recorded under the verified claims (whose token was stolen is worth knowing)
            return self._conclude(facts, not_held, claims)
        required = self.requirement.render(facts)
        if isinstance(required, Refusal):
            return self._conclude(facts, required, claims, required=())
        # Held scopes come from a verified token, but one malformed entry must not crash the check: it covers nothing.
        held = [scope for scope in claims.scope if is_valid_scope(scope)]
        missing = tuple(uncovered(held, required))
        refusal = problems.lacking(required, missing) if missing else None
        return self._conclude(facts, refusal, claims, required=required, missing=missing)

    def _conclude(
        self,
        facts: RequestFacts,
        refusal: Refusal | None,
        claims: Claims | None,
        *,
        required: tuple[str, ...] | None = None,
        missing: tuple[str, ...] = (),
    ) -> Verdict:
        if required is None:  # refused before coverage was checked: still log what the request would have needed
            rendered = self.requirement.render(facts)
            required = () if isinstance(rendered, Refusal) else rendered
        return conclude(self.hooks, facts, refusal, claims, required=required, missing=missing, clock=self._clock)


def conclude(
    hooks: Iterable[AccessLog],
    facts: RequestFacts,
    refusal: Refusal | None,
    claims: Claims | None,
    *,
    required: tuple[str, ...] = (),
    missing: tuple[str, ...] = (),
    clock: Callable[[], float] = time.time,
) -> Verdict:
    """Record the decision in the access log and return it (also used for refusals made without a gate)."""
    record = AccessRecord(
        time=clock(),
        outcome="allowed" if refusal is None else refusal.outcome,
        status=200 if refusal is None else refusal.status,
        reason="scope covered" if refusal is None else refusal.reason,
        method=facts.method,
        route=facts.route,
        path=facts.path,
        request_id=facts.request_id,
        agent_id=claims.sub if claims else None,
        jti=claims.jti if claims else None,
        task_id=claims.task_id if claims else None,
        orch_id=claims.orch_id if claims else None,
        delegation_depth=claims.depth if claims else 0,
        required=required,
        held=claims.scope if claims else (),
        missing=missing,
    )
    emit(hooks, record)
    return Verdict(refusal, claims, record)


@dataclass(frozen=True, slots=True)
class Pending:
    """A check waiting for its token to be verified. The token is kept out of ``repr``."""

    gate: Gate
    facts: RequestFacts
    token: str = field(repr=False)
    scheme: str = "bearer"

    def finish(self, result: VerifyResult) -> Verdict:
        return self.gate.finish(self.facts, result, self.token, self.scheme)
