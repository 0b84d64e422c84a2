"""Agent registration: challenge nonces and the launch-token + proof-of-possession exchange.

An agent proves it holds an Ed25519 private key by signing a fresh broker nonce, and proves it was sent by an
operator or app by presenting a launch token. The order of checks is deliberate:

1. malformed input → 400, nothing touched;
2. unknown, expired or used launch token → 401;
3. requested scope beyond the launch token's ``allowed_scope`` → 403 ``scope_violation``;
   (extension) a launch token bound to another task → 403 ``scope_violation`` too (see ``_launch_tasks``);
4. unknown or expired nonce, bad key or signature → 401;
5. the agent recorded, its token issued.

All of it is one transaction: the launch token and the nonce are taken by one conditional statement each as the
checks reach them, and any refusal rolls the transaction back — so an over-asking agent does not burn its
single-use launch token, and when several registrations (on any replicas) race on one nonce or one single-use
launch token, exactly one succeeds and the others get the same 401 as a replay.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..ed25519 import PUBLIC_KEY_SIZE, encoding_problem, public_key_problem
from ..scopes import uncovered
from . import _audit
from ._audience import requested_audience
from ._bodies import req_identifier, req_scope_list, req_str
from ._challenges import new_nonces
from ._core import BrokerCore, Issued
from ._launch_tasks import bound_elsewhere
from ._pop import key_thumbprint, requested_binding
from ._problems import Problem, unauthorized
from ._secrets import random_hex, sha256_hex
from ._store import AgentRow, LaunchTokenRow, Tx
from ._timefmt import rfc3339_nano

__all__ = ["issue_challenge", "register_agent"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _bad_launch_token() -> Problem:
    return unauthorized("launch token is invalid, expired or already used")


def _bad_nonce() -> Problem:
    return unauthorized("nonce is invalid, expired or already used")


class _Refused(Exception):
    """A registration refused inside its transaction (which rolls back); audited once it has."""

    def __init__(self, problem: Problem, why: str, *, anonymous: bool = False) -> None:
        super().__init__(why)
        self.problem = problem
        self.why = why
        self.anonymous = anonymous


def _check_proof(public_key_b64: str, signature_b64: str, nonce: str) -> None:
    """The agent's signature over the nonce, by an acceptable key.

    Raises:
        _Refused: a malformed or refused key, or a bad signature.
    """
    raw_key = b""
    try:
        raw_key = _b64(public_key_b64, PUBLIC_KEY_SIZE, "public_key")
        _public_key(raw_key).verify(_b64(signature_b64, 64, "signature"), bytes.fromhex(nonce))
    except Problem as problem:
        raise _Refused(problem, problem.detail) from None
    except (InvalidSignature, ValueError):
        refusal = _key_refusal(raw_key)
        why = "bad signature" if refusal.detail.startswith("signature") else refusal.detail
        raise _Refused(refusal, why) from None


async def _record_agent(
    core: BrokerCore,
    tx: Tx,
    agent_id: str,
    launch: LaunchTokenRow,
    public_key_b64: str,
    body: dict[str, Any],
    requested: list[str],
    audience: str | None,
    jkt: str | None,
) -> Issued:
    """The agent, its first token and their two audit events, in the registration's transaction."""
    task_id, orch_id = str(body["task_id"]), str(body["orch_id"])
    registered_ns = time.time_ns()
    await tx.insert_agent(
        AgentRow(
            agent_id=agent_id,
            public_key=public_key_b64,
            orch_id=orch_id,
            task_id=task_id,
            scope=json.dumps(requested),
            app_id=launch.app_id,
            agent_name=launch.agent_name,
            registered_at=rfc3339_nano(registered_ns),
            registered_epoch=registered_ns // 1_000_000_000,
        )
    )
    issued = await core.mint(
        tx,
        sub=agent_id,
        scope=requested,
        ttl=launch.max_ttl,
        kind="agent",
        task_id=task_id,
        orch_id=orch_id,
        audience=audience,
        jkt=jkt,
    )
    await _audit.append(
        tx,
        "agent_registered",
        agent_id=agent_id,
        task_id=task_id,
        orch_id=orch_id,
        detail=f"agent {launch.agent_name[:200]} registered with scope {','.join(requested)}",
    )
    await _audit.append(
        tx,
        "token_issued",
        agent_id=agent_id,
        task_id=task_id,
        orch_id=orch_id,
        detail=f"scope {','.join(requested)}, ttl {issued.expires_in}s",
        resource=issued.claims["jti"],
    )
    return issued


async def issue_challenge(core: BrokerCore) -> dict[str, Any]:
    """``GET /v1/challenge``: a single-use nonce, valid for ``nonce_ttl`` seconds."""
    (nonce,) = await new_nonces(core, 1)
    return {"nonce": nonce, "expires_in": core.settings.nonce_ttl}


def _b64(value: str, size: int, what: str) -> bytes:
    """Strict base64: one spelling per value (unused trailing bits set would give a second one)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise unauthorized(f"{what} is not valid base64") from None
    if len(raw) != size:
        raise unauthorized(f"{what} must be {size} bytes")
    if base64.b64encode(raw).decode("ascii") != value:
        raise unauthorized(f"{what} is not canonical base64")
    return raw


def _public_key(raw: bytes) -> Ed25519PublicKey:
    """The agent's key, refused when a signature by it could be forged without the private key (see ed25519).

    Whether it is a curve point at all is left to the signature it must verify next (:func:`_key_refusal`).
    """
    problem = encoding_problem(raw)
    if problem is not None:
        raise unauthorized(f"public key refused: {problem}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _key_refusal(raw: bytes) -> Problem:
    """Why a registration's signature did not verify: the key's fault (not a curve point), or the signature's."""
    problem = public_key_problem(raw) if raw else None
    return unauthorized(f"public key refused: {problem}" if problem else "signature verification failed")


async def register_agent(core: BrokerCore, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/register``."""
    launch_token = req_str(body, "launch_token", max_len=256)
    nonce = req_str(body, "nonce", max_len=256)
    public_key_b64 = req_str(body, "public_key", max_len=256)
    signature_b64 = req_str(body, "signature", max_len=256)
    orch_id = req_identifier(body, "orch_id")
    task_id = req_identifier(body, "task_id")
    requested = req_scope_list(body, "requested_scope")
    audience = requested_audience(body, extensions=core.settings.extensions)
    key_bound = requested_binding(body, extensions=core.settings.extensions)

    async def refuse(problem: Problem, why: str, *, anonymous: bool = False) -> Problem:
        """Refusals after the launch token checked out are the launch token holder's (never aggregated)."""
        core.metrics.registrations.labels(status="failure").inc()
        return await core.deny(
            problem,
            "registration_policy_violation",
            anonymous=anonymous,
            task_id=task_id,
            orch_id=orch_id,
            detail=why[:500],
        )

    token_hash = sha256_hex(launch_token)
    agent_id = f"spiffe://{core.settings.trust_domain}/agent/{orch_id}/{task_id}/{random_hex(8)}"
    now = time.time()
    try:
        async with core.tx() as tx:
            # Each check in the order above; any refusal rolls the transaction back, so a launch token taken
            # here is not spent by a refused request. Racing registrations wait for each other on the token.
            row = await tx.use_launch_token(token_hash, now)
            if row is None:
                raise _Refused(_bad_launch_token(), "bad launch token", anonymous=True)
            allowed = json.loads(row.allowed_scope)
            missing = uncovered(allowed, requested)
            if missing:
                raise _Refused(
                    Problem(
                        403,
                        "scope_violation",
                        f"requested scope exceeds the launch token's allowed_scope: {', '.join(missing)}",
                    ),
                    f"requested {','.join(requested)} beyond allowed {','.join(allowed)}",
                )
            elsewhere = bound_elsewhere(row, task_id)  # extension: a task-bound launch token
            if elsewhere is not None:
                raise _Refused(elsewhere, f"launch token bound to another task than {task_id}")
            if not _HEX64.fullmatch(nonce) or not await tx.take_nonce(nonce, now):
                raise _Refused(_bad_nonce(), "bad nonce")
            _check_proof(public_key_b64, signature_b64, nonce)
            jkt = key_thumbprint(public_key_b64) if key_bound else None
            issued = await _record_agent(core, tx, agent_id, row, public_key_b64, body, requested, audience, jkt)
    except _Refused as refused:
        raise await refuse(refused.problem, refused.why, anonymous=refused.anonymous) from None
    core.metrics.registrations.labels(status="success").inc()
    return {"agent_id": agent_id, "access_token": issued.token, "expires_in": issued.expires_in}
