"""Advisory 5: identifiers that look alike or hide characters.

``task_id``, ``orch_id`` and other ids accepted zero-width, bidirectional, control, ``..`` and ``\\`` characters
(``visit-77\\u200b`` is another task, so a task-level revoke of ``visit-77`` missed it), and scopes accepted
non-ASCII look-alikes. The broker now applies the scope templates' identifier rule to every id and scope it
stores: a clear 400 problem otherwise, and the plain spelling still works.
"""

from __future__ import annotations

import pytest
from security_support import Wire, bearer, refused, served, unique

HIDDEN = {
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "right-to-left override": "\u202e",
    "byte order mark": "\ufeff",
    "bell": "\x07",
    "line feed": "\n",
    "backslash": "\\",
    "slash": "/",
    "space": " ",
}
LOOK_ALIKES = {
    "cyrillic a": "re\u0430d",  # "read" with a Cyrillic small a
    "fullwidth colon": "read\uff1arecords",
    "greek omicron": "rec\u03bfrds",
}


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_task_and_orch_ids_with_hidden_characters_are_refused(wire: Wire, name: str) -> None:
    task = unique("visit")
    launch = wire.launch_token(["read:records:*"], single_use=False, ttl=120)
    for field in ("task_id", "orch_id"):
        body = wire.register_body(launch, ["read:records:P-1"], task_id=task, orch_id="orch")
        refused(
            "identifiers",
            wire.register({**body, field: body[field] + HIDDEN[name]}),
            400,
            "invalid_request",
            detail_contains=field,
        )
    # The plain id registers, and a task-level revoke of that id reaches every token of the task.
    agent = served("identifiers", wire.register(wire.register_body(launch, ["read:records:P-1"], task_id=task)))
    served("identifiers", wire.revoke("task", task))
    wire.assert_invalid(agent["access_token"])


@pytest.mark.parametrize("task", ["..", ".", "a..b/../c", "..\\x", "x" * 129, ""])
def test_path_like_and_oversized_task_ids_are_refused(wire: Wire, task: str) -> None:
    launch = wire.launch_token(["read:records:*"])
    refused(
        "identifiers",
        wire.register(wire.register_body(launch, ["read:records:P-1"], task_id=task)),
        400,
        "invalid_request",
    )
    served("identifiers", wire.register(wire.register_body(launch, ["read:records:P-1"], task_id="visit-77.v2")))


@pytest.mark.parametrize("name", sorted(HIDDEN) + sorted(LOOK_ALIKES))
def test_scopes_with_look_alikes_or_hidden_characters_are_refused_wherever_stored(wire: Wire, name: str) -> None:
    if name in HIDDEN:
        bad = f"read:records:P-1{HIDDEN[name]}"
    else:
        bad = {"cyrillic a": "re\u0430d:records:P-1", "fullwidth colon": "read\uff1arecords:P-1:x"}.get(
            name, "read:rec\u03bfrds:P-1"
        )
    app = wire.create_app(["read:records:*"])
    attempts = [
        ("/v1/admin/apps", {"name": unique("app"), "scopes": [bad]}, wire.admin()),
        ("/v1/admin/launch-tokens", {"agent_name": "a", "allowed_scope": [bad]}, wire.admin()),
        ("/v1/app/launch-tokens", {"agent_name": "a", "allowed_scope": [bad]}, bearer(wire.app_token(app))),
    ]
    for path, body, headers in attempts:
        refused("identifiers", wire.post(path, json=body, headers=headers), 400, "invalid_request")
    launch = wire.launch_token(["read:records:*"])
    refused("identifiers", wire.register(wire.register_body(launch, [bad])), 400, "invalid_request")
    # Delegation stores the delegated scope in a token too.
    holder = wire.mint(["read:records:*"])
    helper = wire.mint(["read:records:P-2"])
    refused("identifiers", wire.delegate(holder.token, helper.agent_id, [bad]), 400, "invalid_request")
    served("identifiers", wire.delegate(holder.token, helper.agent_id, ["read:records:P-1"]))
    served("identifiers", wire.register(wire.register_body(launch, ["read:records:P-1"])))


def test_other_stored_ids_follow_the_same_rule(wire: Wire) -> None:
    """Launch-token agent names, revocation targets and client ids (echoed into the audit) too."""
    zw = HIDDEN["zero-width space"]
    refused(
        "identifiers",
        wire.launch_token_response(["read:records:*"], agent_name=f"orch/task{zw}"),
        400,
        "invalid_request",
    )
    served("identifiers", wire.launch_token_response(["read:records:*"], agent_name="orch/task-1"), 201)
    refused("identifiers", wire.revoke("task", f"visit-77{zw}"), 400, "invalid_request")
    refused("identifiers", wire.revoke("agent", f"spiffe://agentwrit.local/agent/o/t{zw}/0123"), 400)
    refused("identifiers", wire.revoke("token", "../" + "a" * 32), 400, "invalid_request")
    refused(
        "identifiers",
        wire.post("/v1/app/auth", json={"client_id": f"app-1{HIDDEN['right-to-left override']}", "client_secret": "x"}),
        400,
        "invalid_request",
    )
    served("identifiers", wire.revoke("task", unique("plain-task")))
