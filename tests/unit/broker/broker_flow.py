"""Drive a real BrokerCore through its service functions, without HTTP, for the broker unit tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools.broker import BrokerSettings
from agentwrit_tools.broker import _svc_admin as admin
from agentwrit_tools.broker import _svc_agents as agents
from agentwrit_tools.broker import _svc_tokens as tokens
from agentwrit_tools.broker._core import BrokerCore

SECRET = "unit-test-admin-secret"


def open_core(db_path: Path | None, **settings: Any) -> BrokerCore:
    settings.setdefault("admin_secret", SECRET)
    settings.setdefault("rate_limits", False)
    return BrokerCore.open(BrokerSettings(db_path=db_path, **settings))


@dataclass
class Agent:
    agent_id: str
    token: str
    claims: dict[str, Any]


class Flow:
    """Admin-side shortcuts: launch token → challenge → signed registration, delegation, revocation."""

    def __init__(self, core: BrokerCore) -> None:
        self.core = core
        self.admin_claims = {"sub": "admin", "scope": admin.ADMIN_SCOPES}

    def claims(self, token: str) -> dict[str, Any]:
        return self.core.verify(token)

    def register(self, scope: list[str], *, task: str = "task-1", orch: str = "orch-1", max_ttl: int = 300) -> Agent:
        launch = admin.create_launch_token(
            self.core,
            {"agent_name": "unit", "allowed_scope": scope, "max_ttl": max_ttl},
            claims=self.admin_claims,
            app=None,
        )
        nonce = agents.issue_challenge(self.core)["nonce"]
        key = Ed25519PrivateKey.generate()
        body = {
            "launch_token": launch["launch_token"],
            "nonce": nonce,
            "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
            "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
            "orch_id": orch,
            "task_id": task,
            "requested_scope": scope,
        }
        out = agents.register_agent(self.core, body)
        return Agent(out["agent_id"], out["access_token"], self.claims(out["access_token"]))

    def delegate(self, holder: Agent | str, to: Agent, scope: list[str], ttl: int = 60) -> Agent:
        token = holder.token if isinstance(holder, Agent) else holder
        out = tokens.delegate(
            self.core, self.claims(token), "/v1/delegate", {"delegate_to": to.agent_id, "scope": scope, "ttl": ttl}
        )
        return Agent(to.agent_id, out["access_token"], self.claims(out["access_token"]))

    def renew(self, token: str) -> str:
        return str(tokens.renew(self.core, f"Bearer {token}", "/v1/token/renew")["access_token"])

    def release(self, token: str) -> None:
        tokens.release(self.core, f"Bearer {token}", "/v1/token/release")

    def revoke(self, level: str, target: str) -> dict[str, Any]:
        return tokens.revoke(self.core, self.admin_claims, {"level": level, "target": target})

    def live(self, token: str) -> bool:
        return self.core.live_claims(token) is not None
