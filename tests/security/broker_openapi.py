"""The broker's OpenAPI schema, as its FastAPI app builds it, completed with the wire contract's request shapes.

The broker serves no ``/openapi.json`` (``openapi_url=None``) and its handlers read raw bodies, so the schema the
app factory builds (``create_app(...).openapi()``) lists every path and method but no request body and no query
parameter. A fuzzer given only that would send empty requests. This module adds, per operation, the body and
query parameters ``wire-contract.md`` specifies — so generated requests reach the validation and business logic —
while keeping the app's own paths, methods and path parameters as they are.
"""

from __future__ import annotations

import copy
from typing import Any

STRING = {"type": "string"}
SCOPES = {"type": "array", "items": {"type": "string"}}
INT = {"type": "integer"}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/admin/auth"): _obj(["secret"], secret=STRING),
    ("post", "/v1/admin/apps"): _obj(
        ["name", "scopes"],
        name={"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,40}$"},
        scopes=SCOPES,
        token_ttl=INT,
    ),
    ("put", "/v1/admin/apps/{app_id}"): _obj([], scopes=SCOPES, token_ttl=INT),
    ("post", "/v1/app/auth"): _obj(["client_id", "client_secret"], client_id=STRING, client_secret=STRING),
    ("post", "/v1/admin/launch-tokens"): _obj(
        ["agent_name", "allowed_scope"],
        agent_name=STRING,
        allowed_scope=SCOPES,
        max_ttl=INT,
        single_use={"type": "boolean"},
        ttl=INT,
        task_id=STRING,
    ),
    ("post", "/v1/register"): _obj(
        ["launch_token", "nonce", "public_key", "signature", "orch_id", "task_id", "requested_scope"],
        launch_token=STRING,
        nonce=STRING,
        public_key=STRING,
        signature=STRING,
        orch_id=STRING,
        task_id=STRING,
        requested_scope=SCOPES,
        key_bound={"type": "boolean"},
    ),
    ("post", "/v1/token/validate"): _obj(["token"], token=STRING),
    ("post", "/v1/delegate"): _obj(
        ["delegate_to", "scope"], delegate_to=STRING, scope=SCOPES, ttl=INT, key_bound={"type": "boolean"}
    ),
    ("post", "/v1/audit/approvals"): _obj(
        ["approval_id", "task_id", "orch_id", "tool", "scope", "digest", "decision", "reason"],
        approval_id=STRING,
        task_id=STRING,
        orch_id=STRING,
        tool=STRING,
        scope=SCOPES,
        digest=STRING,
        decision={"type": "string", "enum": ["granted", "refused"]},
        reason=STRING,
        approver=STRING,
    ),
    ("post", "/v1/revoke"): _obj(
        ["level", "target"], level={"type": "string", "enum": ["token", "agent", "task", "chain"]}, target=STRING
    ),
    ("post", "/v1/challenges"): _obj(["count"], count=INT),
    ("post", "/v1/launch-tokens/revoke"): _obj([], task_id=STRING, launch_tokens={"type": "array", "items": STRING}),
}
BODIES[("post", "/v1/app/launch-tokens")] = BODIES[("post", "/v1/admin/launch-tokens")]

QUERIES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("get", "/v1/audit/events"): {
        "agent_id": STRING,
        "task_id": STRING,
        "event_type": STRING,
        "outcome": {"type": "string", "enum": ["success", "denied"]},
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
        "limit": INT,
        "offset": INT,
    },
    ("get", "/v1/revocations"): {"after": INT, "limit": INT},
}

BEARER: dict[tuple[str, str], str] = {
    ("post", "/v1/admin/apps"): "admin",
    ("get", "/v1/admin/apps"): "admin",
    ("get", "/v1/admin/apps/{app_id}"): "admin",
    ("put", "/v1/admin/apps/{app_id}"): "admin",
    ("delete", "/v1/admin/apps/{app_id}"): "admin",
    ("post", "/v1/admin/launch-tokens"): "admin",
    ("post", "/v1/revoke"): "admin",
    ("get", "/v1/audit/events"): "admin",
    ("post", "/v1/app/launch-tokens"): "app",
    ("post", "/v1/token/renew"): "agent",
    ("post", "/v1/token/release"): "agent",
    ("post", "/v1/delegate"): "agent",
    ("get", "/v1/revocations"): "app",
    ("post", "/v1/audit/approvals"): "app",
    ("post", "/v1/challenges"): "app",
    ("post", "/v1/launch-tokens/revoke"): "app",
}
"""Which principal's token each Bearer-protected operation gets, so the fuzzer gets past authentication."""


def completed(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's own schema plus request bodies, query parameters and a bearer security scheme."""
    out = copy.deepcopy(schema)
    for path, operations in out["paths"].items():
        for method, operation in operations.items():
            body = BODIES.get((method, path))
            if body is not None:
                operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            params = operation.setdefault("parameters", [])
            for name, param_schema in QUERIES.get((method, path), {}).items():
                params.append({"name": name, "in": "query", "required": False, "schema": param_schema})
            if not params:
                del operation["parameters"]
    return out
