"""Agent registration: challenge nonces and the launch-token + proof-of-possession exchange.

An agent proves it holds an Ed25519 private key by signing a fresh broker nonce, and proves it was sent by an
operator or app by presenting a launch token. The order of checks is deliberate:

1. malformed input → 400, nothing touched;
2. unknown, expired or used launch token → 401;
3. requested scope beyond the launch token's ``allowed_scope`` → 403 ``scope_violation`` — *before* anything is
   consumed, so an over-asking agent does not burn its single-use launch token;
   (extension) a launch token bound to another task → 403 ``scope_violation`` too (see ``_launch_tasks``);
4. unknown or expired nonce, bad key or signature → 401;
5. then, in one transaction: nonce consumed, launch token used, agent recorded, token issued.
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
from ._audience import requested_audience
from ._bodies import req_identifier, req_scope_list, req_str
from ._core import BrokerCore
from ._problems import Problem, unauthorized
from ._secrets import random_hex, sha256_hex
from ._timefmt import rfc3339_nano

__all__ = ["issue_challenge", "register_agent"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_PURGE_EVERY = 256


def issue_challenge(core: BrokerCore) -> dict[str, Any]:
    """``GET /v1/challenge``: a single-use nonce, valid for ``nonce_ttl`` seconds."""
    nonce = random_hex(32)
    now = time.time()
    with core.tx():
        core.conn.execute(
            "INSERT INTO nonces (nonce, expires_at) VALUES (?, ?)", (nonce, now + core.settings.nonce_ttl)
        )
        core.challenges_issued += 1
        if core.challenges_issued % _PURGE_EVERY == 0:  # expired nonces are useless; keep the table small
            core.conn.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
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
    problem = public_key_problem(raw)
    return unauthorized(f"public key refused: {problem}" if problem else "signature verification failed")


def register_agent(core: BrokerCore, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/register``."""
    launch_token = req_str(body, "launch_token", max_len=256)
    nonce = req_str(body, "nonce", max_len=256)
    public_key_b64 = req_str(body, "public_key", max_len=256)
    signature_b64 = req_str(body, "signature", max_len=256)
    orch_id = req_identifier(body, "orch_id")
    task_id = req_identifier(body, "task_id")
    requested = req_scope_list(body, "requested_scope")
    audience = requested_audience(body, extensions=core.settings.extensions)

    def refuse(problem: Problem, why: str, *, anonymous: bool = False) -> Problem:
        """Refusals after the launch token checked out are the launch token holder's (never aggregated)."""
        core.metrics.registrations.labels(status="failure").inc()
        return core.deny(
            problem,
            "registration_policy_violation",
            anonymous=anonymous,
            task_id=task_id,
            orch_id=orch_id,
            detail=why[:500],
        )

    token_hash = sha256_hex(launch_token)
    row = core.conn.execute(
        "SELECT agent_name, allowed_scope, max_ttl, single_use, expires_at, consumed, app_id FROM launch_tokens"
        " WHERE token_hash = ?",
        (token_hash,),
    ).fetchone()
    now = time.time()
    if row is None or row[5] or row[4] <= now:
        raise refuse(
            unauthorized("launch token is invalid, expired or already used"), "bad launch token", anonymous=True
        )
    agent_name, allowed_json, max_ttl, single_use, _, _, app_id = row
    allowed = json.loads(allowed_json)
    missing = uncovered(allowed, requested)
    if missing:
        raise refuse(
            Problem(
                403,
                "scope_violation",
                f"requested scope exceeds the launch token's allowed_scope: {', '.join(missing)}",
            ),
            f"requested {','.join(requested)} beyond allowed {','.join(allowed)}",
        )
    bound_elsewhere = core.launch_tasks.refusal(token_hash, task_id)  # extension: a task-bound launch token
    if bound_elsewhere is not None:
        raise refuse(bound_elsewhere, f"launch token bound to another task than {task_id}")
    nonce_row = core.conn.execute("SELECT expires_at FROM nonces WHERE nonce = ?", (nonce,)).fetchone()
    if not _HEX64.fullmatch(nonce) or nonce_row is None or nonce_row[0] <= now:
        raise refuse(unauthorized("nonce is invalid, expired or already used"), "bad nonce")
    raw_key = b""
    try:
        raw_key = _b64(public_key_b64, PUBLIC_KEY_SIZE, "public_key")
        _public_key(raw_key).verify(_b64(signature_b64, 64, "signature"), bytes.fromhex(nonce))
    except Problem as problem:
        raise refuse(problem, problem.detail) from None
    except (InvalidSignature, ValueError):
        refusal = _key_refusal(raw_key)
        raise refuse(refusal, "bad signature" if refusal.detail.startswith("signature") else refusal.detail) from None

    agent_id = f"spiffe://{core.settings.trust_domain}/agent/{orch_id}/{task_id}/{random_hex(8)}"
    with core.tx():
        core.conn.execute("DELETE FROM nonces WHERE nonce = ?", (nonce,))
        if single_use:
            core.conn.execute(
                "UPDATE launch_tokens SET consumed = 1, uses = uses + 1 WHERE token_hash = ?", (token_hash,)
            )
        else:
            core.conn.execute("UPDATE launch_tokens SET uses = uses + 1 WHERE token_hash = ?", (token_hash,))
        core.conn.execute(
            "INSERT INTO agents (agent_id, public_key, orch_id, task_id, scope, app_id, agent_name, registered_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                agent_id,
                public_key_b64,
                orch_id,
                task_id,
                json.dumps(requested),
                app_id,
                agent_name,
                rfc3339_nano(time.time_ns()),
            ),
        )
        issued = core.mint(
            sub=agent_id,
            scope=requested,
            ttl=int(max_ttl),
            kind="agent",
            task_id=task_id,
            orch_id=orch_id,
            audience=audience,
        )
        core.audit.append(
            "agent_registered",
            agent_id=agent_id,
            task_id=task_id,
            orch_id=orch_id,
            detail=f"agent {agent_name[:200]} registered with scope {','.join(requested)}",
        )
        core.audit.append(
            "token_issued",
            agent_id=agent_id,
            task_id=task_id,
            orch_id=orch_id,
            detail=f"scope {','.join(requested)}, ttl {issued.expires_in}s",
            resource=issued.claims["jti"],
        )
    core.metrics.registrations.labels(status="success").inc()
    return {"agent_id": agent_id, "access_token": issued.token, "expires_in": issued.expires_in}
