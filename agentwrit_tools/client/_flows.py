"""The credential flows, written once: mint, register, renew, release, delegate — no I/O.

Every flow that obtains a token ends the same way: verify the token the broker returned, then compare the
*verified* claims with what was asked. The official client trusts the request (it reports the scope it asked
for); gating on the claims is what makes "the tool ran with exactly scope R" a checked fact. A token that does
not match is released before the error is raised, so nothing with the wrong authority survives.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .._audience import resource_problem
from ..errors import (
    AgentWritError,
    AudienceMismatch,
    ConfigurationError,
    Forbidden,
    ProtocolError,
    ScopeError,
    ScopeMismatch,
    TokenInvalid,
    Unauthorized,
)
from ..pop import key_thumbprint
from ..scopes import parse_scope
from ._claims import Claims
from ._models import Challenge, Delegated, LaunchToken, Registration, TokenGrant
from ._prefetch import NoncePool
from ._protocol import RetryPolicy, parse, send
from ._session import TokenSession
from ._steps import Call, Flow
from ._verify import VerifierCore

__all__ = ["Core", "Minted", "normalize_scopes"]

LAUNCH_TOKEN_TTL = 30  # seconds a per-call launch token stays usable; it is consumed a moment later anyway


@dataclass(frozen=True, slots=True)
class Minted:
    """A token the broker issued, with its verified claims (the raw result of a flow) and, when known, the private
    key of the agent holding it — what signs the proofs of a key-bound token (it never leaves the process).

    ``prefetched`` names what the flow did not have to fetch on its own path (``nonce``, ``launch_token``).
    """

    agent_id: str
    access_token: str = field(repr=False)
    claims: Claims
    key: Ed25519PrivateKey | None = field(default=None, repr=False, compare=False)
    prefetched: tuple[str, ...] = ()


@dataclass
class Core:
    """Everything the flows need, none of it I/O: retry policy, sessions, verifier, clocks, what is fetched ahead.

    Attributes:
        bind_keys: ask for key-bound tokens (``key_bound``, a broker extension; a reference broker ignores it).
        nonces: challenge nonces fetched ahead (None: every registration fetches its own).
        launch_binding: the broker binds launch tokens to a task and can revoke them (an extension); None until a
            launch token's answer said so either way.
    """

    policy: RetryPolicy
    verifier: VerifierCore
    app: TokenSession | None = None
    admin: TokenSession | None = None
    wall: Callable[[], float] = time.time
    clock: Callable[[], float] = time.monotonic
    bind_keys: bool = False
    nonces: NoncePool | None = None
    launch_binding: bool | None = None

    def require_app(self) -> TokenSession:
        if self.app is None:
            raise ConfigurationError("minting needs app credentials: pass client_id and client_secret")
        return self.app

    def require_admin(self) -> TokenSession:
        if self.admin is None:
            raise ConfigurationError("operator calls need the admin secret: pass admin_secret")
        return self.admin


def normalize_scopes(scope: str | Sequence[str]) -> tuple[str, ...]:
    """One scope or a list of them → a validated, de-duplicated tuple in request order."""
    items = [scope] if isinstance(scope, str) else list(scope)
    if not items:
        raise ScopeError("at least one scope is required")
    for item in items:
        parse_scope(item)
    return tuple(dict.fromkeys(items))


def check_audience(audience: str | None) -> None:
    if audience is not None:
        problem = resource_problem(audience)
        if problem is not None:
            raise ConfigurationError(f"audience: {problem}")


def check_ttl(ttl: int | None) -> None:
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
        raise ConfigurationError("ttl must be a positive whole number of seconds")


def release(core: Core, token: str, jti: str | None = None, exp: int | None = None) -> Flow[bool]:
    """``POST /v1/token/release``. True when this call killed the token, False when it was already dead.

    401/403 mean expired, revoked or already released: the goal (a dead token) holds, so they are not errors.
    Transport failures are: the token's state is unknown and the caller may retry.
    """
    try:
        yield from send(Call("POST", "/v1/token/release", bearer=token), core.policy)
    except (Unauthorized, Forbidden):
        killed = False
    else:
        killed = True
    if jti is not None:
        core.verifier.note_revoked("token", jti, exp)
    return killed


def _unverified_ids(token: str) -> tuple[str, int] | None:
    """``(jti, exp)`` read from a token's payload *without* verifying it: for reporting it, never for trusting it."""
    try:
        segment = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        jti, exp = data["jti"], data["exp"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    if isinstance(jti, str) and isinstance(exp, int) and not isinstance(exp, bool):
        return jti, exp
    return None


def _give_up(core: Core, token: str, error: AgentWritError, jti: str | None = None) -> Flow[None]:
    """Release a token the broker issued that we are not going to hand out, then let ``error`` be raised.

    When that release fails too, the token stays valid until its ``exp``: ``error.unreleased`` says which one, so
    the caller can report it instead of losing track of a live credential.
    """
    try:
        yield from release(core, token, jti)
    except AgentWritError:
        error.unreleased = _unverified_ids(token)


def _verified(core: Core, token: str, *, audience: str | None = None, path: str = "/v1/register") -> Flow[Claims]:
    """Verify a token the broker has just issued; when that fails, release it before raising.

    The broker has already issued it, so giving up without a release would leave a live token that nobody
    holds or reports (it would die only at its TTL). With ``audience``, the token must be bound to that resource
    (its verified ``aud`` holds it) instead of carrying the configured audience: :class:`AudienceMismatch`.
    """
    try:
        return (yield from core.verifier.verify(token, check_revocation=False, audience=audience))
    except AgentWritError as exc:
        error: AgentWritError = exc
        if audience is not None and isinstance(exc, TokenInvalid) and exc.reason == "audience":
            error = AudienceMismatch(audience=audience, method="POST", path=path)
        yield from _give_up(core, token, error)
        if error is exc:
            raise
        raise error from None


def _gate(core: Core, minted: Minted, scopes: tuple[str, ...], *, call: Call, **expected: str) -> Flow[Minted]:
    """Check the verified claims against the request; release and raise when they differ.

    A key-bound token must be bound to the key held for its agent (``minted.key``). A broker that ignores
    ``key_bound`` (the reference contract, or extensions off) issues a bearer token: accepted, and presented as one.
    A token delegated to an agent whose key this process does not hold is for that agent to present.
    """
    claims = minted.claims
    problem: ProtocolError | None = None
    if set(claims.scope) != set(scopes):
        problem = ScopeMismatch(requested=scopes, granted=claims.scope, method=call.method, path=call.path)
    elif claims.jkt is not None and minted.key is not None and claims.jkt != key_thumbprint(minted.key):
        problem = ProtocolError(
            f"{call.method} {call.path}: the issued token is bound to a key this client does not hold",
            method=call.method,
            path=call.path,
        )
    else:
        for name, want in expected.items():
            if getattr(claims, name) != want:
                problem = ProtocolError(
                    f"{call.method} {call.path}: the issued token's {name} is not the one requested",
                    method=call.method,
                    path=call.path,
                )
                break
    if problem is not None:
        yield from _give_up(core, minted.access_token, problem, claims.jti)
        raise problem
    return minted


def register(
    core: Core,
    *,
    launch_token: str,
    scopes: tuple[str, ...],
    orch_id: str,
    task_id: str,
    ttl: int | None,
    audience: str | None = None,
    fresh_nonce: bool = False,
) -> Flow[Minted]:
    """Challenge (a nonce from the pool when there is one) → fresh Ed25519 key → sign the nonce's bytes →
    register → verify → gate.

    ``audience`` (a resource URL) asks for a token bound to that resource — a broker extension (the field is
    ignored by a reference broker) — and the verified ``aud`` must then hold it. With ``core.bind_keys`` the token
    is asked to be bound to the fresh key (``cnf.jkt``, also an extension); the key is kept in the result either
    way, since it is what signs the proofs a bound token is presented with. ``fresh_nonce`` skips the pool.
    """
    nonce = core.nonces.take() if core.nonces is not None and not fresh_nonce else None
    prefetched: tuple[str, ...] = ("nonce",) if nonce is not None else ()
    if nonce is None:
        challenge_call = Call("GET", "/v1/challenge", idempotent=True)
        nonce = parse(Challenge, challenge_call, (yield from send(challenge_call, core.policy))).nonce
    try:
        nonce_bytes = bytes.fromhex(nonce)
    except ValueError:
        raise ProtocolError("GET /v1/challenge: the nonce is not hex", method="GET", path="/v1/challenge") from None
    key = Ed25519PrivateKey.generate()  # one key per credential; it signs the proofs of a key-bound token
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    body: dict[str, object] = {
        "launch_token": launch_token,
        "nonce": nonce,
        "public_key": base64.b64encode(public).decode(),
        "signature": base64.b64encode(key.sign(nonce_bytes)).decode(),
        "orch_id": orch_id,
        "task_id": task_id,
        "requested_scope": list(scopes),
    }
    if audience is not None:
        body["audience"] = audience
    if core.bind_keys:
        body["key_bound"] = True
    started = core.wall()
    call = Call("POST", "/v1/register", body=body)
    reg = parse(Registration, call, (yield from send(call, core.policy)))
    claims = yield from _verified(core, reg.access_token, audience=audience)
    minted = Minted(reg.agent_id, reg.access_token, claims, key, prefetched)
    # Lifetime measured on the broker's own clock (exp - iat) when it says iat, so clock skew cannot fail this.
    issued = claims.iat if claims.iat is not None else math.floor(started)
    if ttl is not None and claims.exp - issued > ttl + 1:
        outlives = ProtocolError(
            "POST /v1/register: the token outlives the requested ttl", method="POST", path=call.path
        )
        yield from _give_up(core, reg.access_token, outlives, claims.jti)
        raise outlives
    return (yield from _gate(core, minted, scopes, call=call, sub=reg.agent_id, orch_id=orch_id, task_id=task_id))


def launch_body(
    agent_name: str,
    scopes: tuple[str, ...],
    *,
    max_ttl: int | None,
    single_use: bool,
    ttl: int,
    task_id: str | None = None,
) -> dict[str, object]:
    """A launch-token request; ``task_id`` asks the broker to bind the token to that task (an extension that a
    reference broker ignores: see :mod:`._launch`)."""
    body: dict[str, object] = {"agent_name": agent_name, "allowed_scope": list(scopes), "single_use": single_use}
    body["ttl"] = ttl
    if max_ttl is not None:
        body["max_ttl"] = max_ttl
    if task_id is not None:
        body["task_id"] = task_id
    return body


def app_launch_token(core: Core, body: dict[str, object]) -> Flow[LaunchToken]:
    """``POST /v1/app/launch-tokens`` with the app session (logging in first if needed)."""
    session = core.require_app()

    def build(bearer: str) -> Call:
        return Call("POST", "/v1/app/launch-tokens", body=body, bearer=bearer)

    response = yield from session.call(build)
    return parse(LaunchToken, build(""), response)


def mint(
    core: Core,
    scope: str | Sequence[str],
    *,
    orch_id: str,
    task_id: str,
    ttl: int | None = None,
    launch_token: str | None = None,
    agent_name: str | None = None,
    audience: str | None = None,
) -> Flow[Minted]:
    """A per-call credential: a single-use launch token for exactly ``scope``, then :func:`register`."""
    scopes = normalize_scopes(scope)
    check_ttl(ttl)
    check_audience(audience)
    if launch_token is None:
        body = launch_body(
            agent_name or task_id, scopes, max_ttl=ttl, single_use=True, ttl=LAUNCH_TOKEN_TTL, task_id=task_id
        )
        launch_token = (yield from app_launch_token(core, body)).launch_token
    return (
        yield from register(
            core,
            launch_token=launch_token,
            scopes=scopes,
            orch_id=orch_id,
            task_id=task_id,
            ttl=ttl,
            audience=audience,
        )
    )


def renew(core: Core, token: str, previous: Claims, key: Ed25519PrivateKey | None = None) -> Flow[Minted]:
    """``POST /v1/token/renew``: same subject and scope, fresh jti and exp; the predecessor is revoked (a key-bound
    token stays bound to ``key``, the holder's)."""
    call = Call("POST", "/v1/token/renew", bearer=token)
    grant = parse(TokenGrant, call, (yield from send(call, core.policy)))
    core.verifier.note_revoked("token", previous.jti, previous.exp)  # the broker revoked the predecessor
    claims = yield from _verified(core, grant.access_token)
    minted = Minted(claims.sub, grant.access_token, claims, key)
    return (yield from _gate(core, minted, previous.scope, call=call, sub=previous.sub))


def delegate(
    core: Core,
    token: str,
    *,
    to: str,
    scope: str | Sequence[str],
    ttl: int | None,
    audience: str | None = None,
    key: Ed25519PrivateKey | None = None,
) -> Flow[Minted]:
    """``POST /v1/delegate``: a narrower token for agent ``to``, verified and gated like a mint (bound to the
    resource ``audience`` when given: see :func:`register`).

    ``key`` is the delegate's private key when this process holds it (the delegate is one of its own credentials):
    a key-bound delegated token must then be bound to it. The broker binds a token delegated from a bound one to
    the delegate's registered key, and any delegated token when ``core.bind_keys`` asks.
    """
    scopes = normalize_scopes(scope)
    check_ttl(ttl)
    check_audience(audience)
    body: dict[str, object] = {"delegate_to": to, "scope": list(scopes)}
    if ttl is not None:
        body["ttl"] = ttl
    if audience is not None:
        body["audience"] = audience
    if core.bind_keys:
        body["key_bound"] = True
    call = Call("POST", "/v1/delegate", body=body, bearer=token)
    granted = parse(Delegated, call, (yield from send(call, core.policy)))
    claims = yield from _verified(core, granted.access_token, audience=audience, path=call.path)
    return (yield from _gate(core, Minted(to, granted.access_token, claims, key), scopes, call=call, sub=to))
