"""Token lifecycle endpoints: validate, renew, release, delegate, revoke, and the audit query.

Messages on validate and renew are generic on purpose ("token is invalid or expired", "token renewal failed"):
telling expired from revoked from forged would help an attacker probe. The detailed reason goes to the debug
log only, and never with the token.

Extensions active when ``settings.extensions`` is on: a delegated token's ``exp`` is capped at its delegator's,
and release/revoke cascade to every token delegated from the revoked one (see :mod:`._revocation`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..scopes import is_identifier, uncovered
from . import _audit
from ._audience import delegated_audience
from ._audit import AuditFilter
from ._bodies import MAX_STRING, int_or, is_agent_id, query_int, req_scope_list, req_str
from ._core import BrokerCore, principal_kind
from ._pop import delegate_binding
from ._problems import Problem, bad_request, insufficient_scope, not_found, unauthorized
from ._revocation import LEVELS, TokenRow, chain_root_of
from ._store import Contended
from ._timefmt import parse_rfc3339_ns, rfc3339_seconds

__all__ = [
    "RENEW_FAILED",
    "VALIDATE_FAILED",
    "audit_events",
    "delegate",
    "release",
    "renew",
    "revocation_feed",
    "revoke",
    "validate",
]

logger = logging.getLogger("agentwrit_tools.broker")

VALIDATE_FAILED = "token is invalid or expired"
RENEW_FAILED = "token renewal failed"


def _audit_ids(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "agent_id": str(claims.get("sub", "")),
        "task_id": str(claims.get("task_id", "")),
        "orch_id": str(claims.get("orch_id", "")),
    }


async def _row_for(core: BrokerCore, claims: Mapping[str, Any]) -> TokenRow:
    """The stored record of a verified token; rebuilt from its claims when the row is missing (e.g. a restored
    database with the same key, or a record housekeeping purged), so lifecycle operations still work."""
    row = await core.revocations.token_row(str(claims["jti"]))
    if row is not None:
        return row
    return TokenRow(
        jti=str(claims["jti"]),
        sub=str(claims["sub"]),
        task_id=str(claims.get("task_id", "")),
        orch_id=str(claims.get("orch_id", "")),
        chain_root=chain_root_of(dict(claims)),
        lineage=str(claims["jti"]),
        exp=int(claims["exp"]),
        kind=principal_kind(dict(claims)),
        ttl=int(claims["exp"]) - int(claims["iat"]),
        iat=int(claims["iat"]),
    )


class _Revoked(Exception):
    """The presented token turned out revoked inside the transaction (revoked a moment ago, maybe elsewhere)."""


async def validate(core: BrokerCore, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/token/validate``: always an answer, never a reason."""
    token = body.get("token")
    if token is None:
        raise bad_request("missing required field 'token'")
    if not isinstance(token, str):
        raise bad_request("field 'token' must be a string")
    claims = await core.live_claims(token)
    if claims is None:
        return {"valid": False, "error": VALIDATE_FAILED}
    return {"valid": True, "claims": claims}


async def renew(core: BrokerCore, authorization: str | None, path: str) -> dict[str, Any]:
    """``POST /v1/token/renew``: same identity, scope and chain under a fresh ``jti``; the old one dies first.

    Never past the absolute lifetime fixed when the line was first issued (``renew_until``): a stolen or leaked
    token cannot be kept alive by renewing it, and an admin session ends without the secret being presented
    again. The predecessor's revocation is the transaction's first order-sensitive step: a token already revoked
    (here or on another replica) renews into nothing.
    """
    failed = unauthorized(RENEW_FAILED)
    try:
        claims = await core.authenticate(authorization, required_scope=None, path=path, audit=False)
    except Problem:
        await core.record_denial("token_renewal_failed", detail=RENEW_FAILED, resource=path)
        raise failed from None
    row = await _row_for(core, claims)
    renew_until = row.renew_until
    if renew_until is None:  # issued before renewal lines had an end: it ends a session after this token's iat
        renew_until = core.session_end(row.kind, int(claims["iat"]))
    if renew_until <= int(time.time()):
        # The line's absolute lifetime is spent: the holder must authenticate again (secret, launch token).
        await core.record_denial(
            "token_renewal_failed", claims=claims, detail="the token's absolute lifetime has passed", resource=path
        )
        raise failed
    try:
        async with core.tx() as tx:
            if await core.revocations.claims_revoked_in(tx, claims):
                raise _Revoked
            await core.revocations.revoke_token(tx, row, cascade=False)
            issued = await core.mint(
                tx,
                sub=row.sub,
                scope=list(claims["scope"]),
                ttl=row.ttl,
                kind=row.kind,
                task_id=str(claims.get("task_id", "")),
                orch_id=str(claims.get("orch_id", "")),
                sid=claims.get("sid"),
                chain=claims.get("delegation_chain"),
                chain_hash=claims.get("chain_hash"),
                lineage=row.lineage,
                parent_lineage=row.parent_lineage,
                renewed_from=row.jti,
                exp_cap=row.exp_cap,
                renew_until=int(renew_until),
                audience=row.audience,  # extension: a bound token stays bound
                jkt=row.jkt,  # extension: so does a key-bound one
            )
            await _audit.append(
                tx,
                "token_renewed",
                **_audit_ids(claims),
                detail=f"jti {row.jti} renewed as {issued.claims['jti']}",
                resource=issued.claims["jti"],
                deleg_depth=len(claims.get("delegation_chain") or []),
                deleg_chain_hash=str(claims.get("chain_hash") or ""),
            )
    except _Revoked:
        await core.record_denial("token_renewal_failed", detail=RENEW_FAILED, resource=path)
        raise failed from None
    return {"access_token": issued.token, "expires_in": issued.expires_in}


async def release(core: BrokerCore, authorization: str | None, path: str) -> None:
    """``POST /v1/token/release``: the holder ends its own token (and, extension, what it delegated)."""
    claims = await core.authenticate(authorization, required_scope=None, path=path)
    row = await _row_for(core, claims)
    try:
        # First optimistically (most released tokens delegated nothing: the store may then check that at
        # commit, holding the ordering lock only for the database's own work), then the general way.
        for optimistic in (True, False):
            try:
                await _release(core, claims, row, optimistic=optimistic)
                return
            except Contended:
                continue
    except _Revoked:
        raise insufficient_scope("token has been revoked") from None


async def _release(core: BrokerCore, claims: dict[str, Any], row: TokenRow, *, optimistic: bool) -> None:
    async with core.tx() as tx:
        # Its own token rule already there: released (or revoked) a moment ago, maybe on another replica.
        # (An agent-, task- or chain-level rule was refused by the bearer check; releasing such a token
        # anyway would only add a redundant rule.)
        added, victims = await core.revocations.revoke_token(tx, row, cascade=True, optimistic=optimistic)
        if not added:
            raise _Revoked
        await _audit.append(
            tx,
            "token_released",
            **_audit_ids(claims),
            detail=f"jti {row.jti} released" + (f"; {len(victims)} delegated token(s) revoked" if victims else ""),
            resource=row.jti,
            deleg_depth=len(claims.get("delegation_chain") or []),
            deleg_chain_hash=str(claims.get("chain_hash") or ""),
        )


def _chain_hash(chain: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(chain, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()


async def delegate(core: BrokerCore, claims: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/delegate``: hand a subset of the caller's (verified, unrevoked) scope to a registered agent."""
    delegate_to = req_str(body, "delegate_to", max_len=MAX_STRING)
    requested = req_scope_list(body, "scope")
    ttl = int_or(body, "ttl", core.settings.delegation_ttl, error_code="invalid_ttl")
    delegator = str(claims["sub"])
    ids = _audit_ids(claims)
    chain: list[dict[str, Any]] = list(claims.get("delegation_chain") or [])
    if not delegator.startswith("spiffe://"):
        raise await core.deny(
            insufficient_scope("only agent tokens can delegate"),
            "delegation_attenuation_violation",
            claims=claims,
            detail="a non-agent token tried to delegate",
            resource=path,
        )
    missing = uncovered(claims["scope"], requested)
    if missing:
        raise await core.deny(
            Problem(
                403, "scope_violation", f"delegated scope must be a subset of yours; not held: {', '.join(missing)}"
            ),
            "delegation_attenuation_violation",
            claims=claims,
            detail=f"tried to delegate {','.join(requested)} holding {','.join(claims['scope'])}",
            resource=delegate_to[:200],
        )
    if len(chain) >= core.settings.max_delegation_depth:
        raise await core.deny(
            Problem(403, "scope_violation", f"delegation depth limit reached ({core.settings.max_delegation_depth})"),
            "delegation_attenuation_violation",
            claims=claims,
            detail="delegation depth limit reached",
            resource=delegate_to[:200],
            deleg_depth=len(chain),
        )
    async with core.store.reader() as reader:
        delegate_key = await reader.agent_public_key(delegate_to)
    if delegate_key is None:
        raise not_found("delegate_to is not a registered agent")
    row = await _row_for(core, claims)
    # extension: bound to the delegate's own key when the delegator is bound (or when asked)
    jkt = delegate_binding(row.jkt, delegate_key, body, extensions=core.settings.extensions)
    try:  # extension: a delegated token keeps its delegator's aud, or binds an unbound one to a resource
        audience = delegated_audience(row.audience, body, extensions=core.settings.extensions)
    except Problem as refused:
        if refused.status != 403:
            raise
        raise await core.deny(
            refused, "delegation_attenuation_violation", **ids, detail=refused.detail, resource=delegate_to[:200]
        ) from None

    delegated_at = rfc3339_seconds(time.time())
    held = list(claims["scope"])
    message = f"{delegator}|{','.join(held)}|{delegated_at}".encode()
    record = {
        "agent": delegator,
        "scope": held,
        "delegated_at": delegated_at,
        "signature": core.key.sign(message).hex(),
    }
    chain.append(record)
    chain_hash = _chain_hash(chain)
    try:
        async with core.tx() as tx:
            issued = await core.mint(
                tx,
                sub=delegate_to,
                scope=requested,
                ttl=ttl,
                kind="delegated",
                task_id=ids["task_id"],
                orch_id=ids["orch_id"],
                chain=chain,
                chain_hash=chain_hash,
                parent_lineage=row.lineage,
                exp_cap=int(claims["exp"]) if core.settings.extensions else None,
                audience=audience,
                jkt=jkt,
            )
            # After the new token is written and under the store's serialisation: a revocation of the delegator
            # committed before this point is seen here, and one committed after it cascades to the new token.
            if await core.revocations.claims_revoked_in(tx, claims):
                raise _Revoked
            await _audit.append(
                tx,
                "delegation_created",
                agent_id=delegate_to,
                task_id=ids["task_id"],
                orch_id=ids["orch_id"],
                detail=f"{delegator} delegated {','.join(requested)}",
                resource=issued.claims["jti"],
                deleg_depth=len(chain),
                deleg_chain_hash=chain_hash,
            )
    except _Revoked:
        raise insufficient_scope("token has been revoked") from None
    return {"access_token": issued.token, "expires_in": issued.expires_in, "delegation_chain": chain}


async def revoke(core: BrokerCore, claims: Mapping[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/revoke`` (admin): add a rule at one of four levels."""
    level = req_str(body, "level", max_len=16)
    if level not in LEVELS:
        raise bad_request(f"level must be one of {', '.join(LEVELS)}")
    target = req_str(body, "target", max_len=MAX_STRING)
    if level in ("agent", "chain"):
        # Rules are permanent: an agent-level rule on "admin" or "app:…" would lock that principal out for good.
        if not is_agent_id(target):
            raise bad_request(f"{level}-level revocation targets an agent's SPIFFE ID (spiffe://…)")
    elif not is_identifier(target):
        raise bad_request(f"{level}-level revocation targets a plain identifier (a jti or a task id)")
    async with core.tx() as tx:
        hit, cascaded = await core.revocations.revoke(tx, level, target)
        launch = 0
        if level == "task" and core.settings.extensions:  # its bound launch tokens die with it (_launch_tasks)
            launch = await tx.spend_launch_tokens(time.time(), task_id=target)
        await _audit.append(
            tx,
            "token_revoked",
            agent_id=target if level in ("agent", "chain") else "",
            task_id=target if level == "task" else "",
            detail=f"{level}-level revocation by {claims.get('sub', '')}: {len(hit)} live token(s)"
            + (f", {len(cascaded)} delegated token(s) by cascade" if cascaded else "")
            + (f", {launch} unused launch token(s)" if launch else ""),
            resource=target if level == "token" else "",
        )
    return {"revoked": True, "level": level, "target": target, "count": len(hit)}


def _time_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        value = parse_rfc3339_ns(raw)
    except ValueError:
        raise bad_request(f"query parameter {name!r} must be an RFC 3339 timestamp") from None
    # Years before 1678 or after 2262 do not fit SQLite's 64-bit integers; no event is stored out there anyway.
    return max(-(2**63), min(value, 2**63 - 1))


async def audit_events(core: BrokerCore, params: Mapping[str, str]) -> dict[str, Any]:
    """``GET /v1/audit/events`` (admin): filtered, paginated, oldest first (aggregation windows that are over
    are summarised first, so a reader sees every refusal accounted for)."""
    await core.flush_denials()
    flt = AuditFilter(
        agent_id=params.get("agent_id") or None,
        task_id=params.get("task_id") or None,
        event_type=params.get("event_type") or None,
        outcome=params.get("outcome") or None,
        since_ns=_time_param(params, "since"),
        until_ns=_time_param(params, "until"),
    )
    limit = query_int(params, "limit", 100, minimum=1, maximum=1000)
    offset = query_int(params, "offset", 0, minimum=0, maximum=2**62)
    where, args = flt.where()
    async with core.store.reader() as tx:
        events = await tx.audit_events(where, args, limit, offset)
        total = await core.audit_counts.count(tx, flt)  # kept as the log grows (see _audit_counts)
    return {"events": events, "total": total, "offset": offset, "limit": limit}


async def revocation_feed(core: BrokerCore, params: Mapping[str, str]) -> dict[str, Any]:
    """Extension ``GET /v1/revocations``: rules after ``after`` in ``seq`` order."""
    after = query_int(params, "after", 0, minimum=0, maximum=2**62)
    limit = query_int(params, "limit", 1000, minimum=1, maximum=1000)
    return await core.revocations.feed(after, limit)
