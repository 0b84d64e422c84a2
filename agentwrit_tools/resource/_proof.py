"""Proof of possession on the resource side: a key-bound token is accepted only with a fresh proof by its key.

A token whose verified claims carry ``cnf.jkt`` was bound by the broker to its agent's key. Such a token must come
as ``Authorization: DPoP <token>`` with exactly one ``DPoP`` header holding a proof (:mod:`agentwrit_tools.pop`)
that is signed by that very key, made for this method and this URL, recent, for this token, and never seen
before. A copy of the token lifted from a log, sent as a bearer token or with a proof of the thief's own making,
is refused (401, ``WWW-Authenticate: DPoP error="invalid_dpop_proof"``/``"invalid_token"``).

A resource may also *demand* key-bound tokens (``possession="required"``): then a bearer token is refused too.

Which proofs were used is remembered in a :class:`~agentwrit_tools.pop.ReplayCache`, by default one per process
shared by every check, so a proof replayed at another endpoint of the same service is refused as well (it would
be refused there anyway, being for another URL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..client import Claims
from ..errors import ConfigurationError
from ..pop import ProofInvalid, ReplayCache, check_proof
from . import _problems as problems
from ._problems import Refusal
from ._request import RequestFacts

__all__ = ["SHARED_REPLAY_CACHE", "Possession", "ProofRules"]

SHARED_REPLAY_CACHE = ReplayCache()
"""The replay cache every :class:`ProofRules` uses unless given its own."""

Possession = Literal["auto", "required"]


@dataclass(frozen=True)
class ProofRules:
    """How a protected operation treats proofs of possession.

    Attributes:
        required: refuse tokens that are not key-bound (default: check a proof when the token is bound, accept a
            bearer token otherwise).
        max_age: how old a proof may be (its ``iat``), in seconds.
        leeway: how far ahead of this clock a proof's ``iat`` may be, in seconds.
        replay: where used proof ids are remembered (default: one cache per process).
        clock: Unix seconds.
    """

    required: bool = False
    max_age: float = 60.0
    leeway: float = 5.0
    replay: ReplayCache = field(default=SHARED_REPLAY_CACHE, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        if not (0 < self.max_age <= 3600) or not (0 <= self.leeway <= 300):
            raise ConfigurationError("max_age must be in (0, 3600] seconds and leeway in [0, 300] seconds")

    @classmethod
    def coerce(cls, value: ProofRules | Possession) -> ProofRules:
        """``"auto"``, ``"required"`` or ready rules."""
        if isinstance(value, ProofRules):
            return value
        if value not in ("auto", "required"):
            raise ConfigurationError("possession must be 'auto', 'required' or a ProofRules")
        return cls(required=value == "required")

    def check(self, claims: Claims, scheme: str, token: str, facts: RequestFacts) -> Refusal | None:
        """Why the request does not prove possession of ``claims``'s key (None: it does, or needs not)."""
        jkt = claims.jkt
        if jkt is None:
            if scheme == "dpop" or self.required:
                return problems.unbound_token(self.required)
            return None
        if scheme != "dpop":
            return problems.bound_token_as_bearer()
        # Two headers may reach us joined by a comma (WSGI does that); a proof never holds one.
        proofs = [proof.strip() for value in facts.dpop for proof in value.split(",")]
        if len(proofs) != 1:
            how = "missing" if not proofs else "several"
            return problems.proof_refused(how, "the request must carry exactly one DPoP proof header")
        if not facts.url:
            return problems.proof_refused("no url", "the DPoP proof cannot be checked: the request URL is unknown")
        try:
            proof = check_proof(
                proofs[0],
                method=facts.method,
                url=facts.url,
                access_token=token,
                jkt=jkt,
                now=self.clock(),
                max_age=self.max_age,
                leeway=self.leeway,
            )
            self.replay.admit(proof, until=proof.iat + self.max_age + self.leeway)
        except ProofInvalid as exc:
            return problems.proof_refused(exc.reason, exc.detail)
        return None
