"""Scope injection through every entry point: a model (or a request) chooses a value that lands in a scope.

The corpus holds what would widen or fork a scope if it were pasted in as it is: wildcards, separators, whitespace
and control characters, paths, percent-encodings, Unicode look-alikes of ``:`` and ``*``, empty and 10 000-character
values. The task ceiling is ``read:records:*`` and the app may mint anything in it, so a value that slipped through
(``*`` → ``read:records:*``) *would* be minted: only the template's safe-value rule stands in the way.

For each entry point — the guard itself, the OpenAI adapter (chat and Responses formats, sync and async), the
LangChain adapter (a scoped tool and a wrapped LangChain tool), a pipeline stage's tool calls, and the resource side's
templates (``require`` and a FastAPI service, path and query) — every value must be refused, the tool body must not
run, and the broker's audit log must show nothing minted for the task (no ``agent_registered``, ``token_issued`` or
``delegation_created`` beyond what the same entry point mints with no call at all). A control value (``P-1``) through
the same entry point is minted, which shows the audit check can see a mint.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from security_support import AUDIENCE, ISSUER, Wire, bearer

from agentwrit_tools import AsyncBroker, Broker, Credential, Task, current_credential, scoped_tool
from agentwrit_tools.guard import ScopedTool

CORPUS: dict[str, Any] = {
    "wildcard": "*",
    "trailing_wildcard": "P-1*",
    "identifier_then_wildcard": "x:*",
    "separator": "a:b",
    "fourth_part": "P-1:extra",
    "space": "a b",
    "leading_space": " P-1",
    "trailing_space": "P-1 ",
    "tab": "P-1\t",
    "newline": "P-1\n",
    "crlf_new_scope": "P-1\r\nread:records:*",
    "nul": "P-1\x00",
    "path_traversal": "../x",
    "dot_dot": "..",
    "slash": "a/b",
    "backslash": "a\\b",
    "percent_star": "%2A",
    "percent_star_lower": "%2a",
    "percent_colon": "a%3Ab",
    "double_encoded_star": "%252A",
    "fullwidth_colon": "P\uff1a1",
    "modifier_colon": "P\ua7891",
    "ratio": "P\u22361",
    "asterisk_operator": "\u2217",
    "fullwidth_asterisk": "\uff0a",
    "low_asterisk": "\u204e",
    "zero_width_space": "P-\u200b1",
    "right_to_left_override": "\u202eP-1",
    "empty": "",
    "ten_thousand_characters": "P" * 10_000,
}
"""Strings a model or a request might supply for ``patient_id``; every one must be refused."""

NON_STRINGS: dict[str, Any] = {"list_wildcard": ["*"], "object": {"$ne": ""}, "null": None, "bool": True}
"""Values of the wrong JSON type (model-facing entry points only: the schema refuses them first)."""

MINTING = ("agent_registered", "token_issued", "delegation_created")


def minted_for(wire: Wire, task_id: str) -> dict[str, int]:
    counts = dict.fromkeys(MINTING, 0)
    for event in wire.all_events(task_id=task_id):
        if event["event_type"] in counts:
            counts[event["event_type"]] += 1
    return counts


class Body:
    """A tool body that records every credential it ran with (it must never run for the corpus)."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def tool(self) -> ScopedTool:
        @scoped_tool("read:records:{patient_id}")
        def read_record(patient_id: str, credential: Credential) -> str:
            self.ran.append(patient_id)
            return f"record {patient_id}"

        return read_record


@pytest.fixture(scope="module")
def sec_app(sec_broker: Any) -> Any:
    return sec_broker.create_app(f"inject-{secrets.token_hex(3)}", ["read:records:*"])


@pytest.fixture(scope="module")
def client(sec_broker: Any, sec_app: Any) -> Iterator[Broker]:
    with Broker(sec_broker.url, sec_app.client_id, sec_app.client_secret, issuer=ISSUER, audience=AUDIENCE) as c:
        yield c


@pytest.fixture(scope="module")
def async_client_args(sec_broker: Any, sec_app: Any) -> tuple[str, str, str]:
    return sec_broker.url, sec_app.client_id, sec_app.client_secret


def new_task(client: Broker | AsyncBroker, tool: ScopedTool) -> Task:
    return Task(
        client, orch_id="orch-inject", task_id=f"inject-{secrets.token_hex(5)}", ceiling="read:records:*", tools=[tool]
    )


def all_values(*, strings_only: bool = False) -> dict[str, Any]:
    return dict(CORPUS) if strings_only else {**CORPUS, **NON_STRINGS}


def assert_nothing_minted(wire: Wire, task_id: str, body: Body, baseline: dict[str, int] | None = None) -> None:
    assert body.ran == [], f"a tool body ran for {body.ran!r}"
    assert minted_for(wire, task_id) == (baseline or dict.fromkeys(MINTING, 0))


def assert_control_minted(wire: Wire, task_id: str) -> None:
    counts = minted_for(wire, task_id)
    assert counts["token_issued"] >= 1 or counts["delegation_created"] >= 1, counts


# ---- the guard ------------------------------------------------------------------------------------------------


def test_scope_injection_is_refused_by_the_guard(client: Broker, wire: Wire) -> None:
    body = Body()
    with new_task(client, body.tool()) as task:
        for name, value in all_values().items():
            result = task.call("read_record", {"patient_id": value})
            assert not result.ok, name
            assert result.error_kind in ("unsafe_argument", "invalid_arguments"), (name, result.error_kind)
            assert result.jti is None, name
        assert task.live_credentials == 0
    assert_nothing_minted(wire, task.task_id, body)
    with new_task(client, body.tool()) as control:
        assert control.call("read_record", {"patient_id": "P-1"}).ok
    assert_control_minted(wire, control.task_id)


@pytest.mark.anyio
async def test_scope_injection_is_refused_by_the_async_guard(
    async_client_args: tuple[str, str, str], wire: Wire
) -> None:
    body = Body()
    async with AsyncBroker(*async_client_args) as client, new_task(client, body.tool()) as task:
        for name, value in all_values().items():
            result = await task.acall("read_record", {"patient_id": value})
            assert not result.ok, name
            assert result.error_kind in ("unsafe_argument", "invalid_arguments"), (name, result.error_kind)
    assert_nothing_minted(wire, task.task_id, body)


# ---- the OpenAI adapter ---------------------------------------------------------------------------------------


def _chat_response(values: dict[str, Any]) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "read_record", "arguments": json.dumps({"patient_id": value})},
        }
        for i, value in enumerate(values.values())
    ]
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls}}]}


def _responses_response(values: dict[str, Any]) -> dict[str, Any]:
    items = [
        {
            "type": "function_call",
            "call_id": f"fc_{i}",
            "name": "read_record",
            "arguments": json.dumps({"patient_id": value}),
        }
        for i, value in enumerate(values.values())
    ]
    return {"output": items}


def _assert_refusal_messages(messages: list[dict[str, Any]], count: int) -> None:
    assert len(messages) == count
    for message in messages:
        text = message.get("content", message.get("output"))
        assert isinstance(text, str)
        assert not text.startswith("record "), text


def test_scope_injection_is_refused_by_the_openai_adapter(client: Broker, wire: Wire) -> None:
    from agentwrit_tools.adapters.openai import execute_tool_calls

    body = Body()
    values = all_values()
    with new_task(client, body.tool()) as task:
        _assert_refusal_messages(execute_tool_calls(task, _chat_response(values)), len(values))
        _assert_refusal_messages(execute_tool_calls(task, _responses_response(values)), len(values))
        # A model may also send arguments that are not even JSON, or JSON that is not an object.
        raw = {"choices": [{"message": {"role": "assistant", "tool_calls": []}}]}
        raw["choices"][0]["message"]["tool_calls"] = [
            {"id": f"raw_{i}", "type": "function", "function": {"name": "read_record", "arguments": text}}
            for i, text in enumerate(['{"patient_id": "*"', '"*"', '["*"]', '{"patient_id": "P-1", "patient_id": "*"}'])
        ]
        _assert_refusal_messages(execute_tool_calls(task, raw), 4)
    assert_nothing_minted(wire, task.task_id, body)
    with new_task(client, body.tool()) as control:
        [message] = execute_tool_calls(control, _chat_response({"ok": "P-1"}))
        assert message["content"] == "record P-1"
    assert_control_minted(wire, control.task_id)


@pytest.mark.anyio
async def test_scope_injection_is_refused_by_the_async_openai_adapter(
    async_client_args: tuple[str, str, str], wire: Wire
) -> None:
    from agentwrit_tools.adapters.openai import aexecute_tool_calls

    body = Body()
    values = all_values()
    async with AsyncBroker(*async_client_args) as client, new_task(client, body.tool()) as task:
        _assert_refusal_messages(await aexecute_tool_calls(task, _chat_response(values)), len(values))
        _assert_refusal_messages(await aexecute_tool_calls(task, _responses_response(values)), len(values))
    assert_nothing_minted(wire, task.task_id, body)


# ---- the LangChain adapter ------------------------------------------------------------------------------------


def test_scope_injection_is_refused_by_the_langchain_adapter(client: Broker, wire: Wire) -> None:
    from langchain_core.messages import ToolMessage
    from langchain_core.tools import tool as lc_tool

    from agentwrit_tools.adapters.langchain import as_langchain_tool, wrap_langchain_tool

    body = Body()
    wrapped_ran: list[str] = []

    @lc_tool
    def lookup_record(patient_id: str) -> str:
        """Look a patient's record up."""
        current_credential()
        wrapped_ran.append(patient_id)
        return f"record {patient_id}"

    with new_task(client, body.tool()) as task:
        guarded = [
            as_langchain_tool(body.tool(), task),
            wrap_langchain_tool(lookup_record, task, scope="read:records:{patient_id}"),
        ]
        for tool in guarded:
            for i, (name, value) in enumerate(all_values().items()):
                message = tool.invoke(
                    {"type": "tool_call", "id": f"lc_{i}", "name": tool.name, "args": {"patient_id": value}}
                )
                assert isinstance(message, ToolMessage), name
                assert message.status == "error", (name, message.content)
    assert wrapped_ran == []
    assert_nothing_minted(wire, task.task_id, body)
    with new_task(client, body.tool()) as control:
        assert as_langchain_tool(body.tool(), control).invoke({"patient_id": "P-1"}) == "record P-1"
    assert_control_minted(wire, control.task_id)


# ---- the pipeline ---------------------------------------------------------------------------------------------


def _pipeline_run(client: Broker, body: Body, values: dict[str, Any]) -> tuple[str, Any]:
    from agentwrit_tools.pipeline import Pipeline, Stage

    tool = body.tool()

    def lookup(ctx: Any) -> list[bool]:
        return [ctx.call(tool, {"patient_id": value}).ok for value in values.values()]

    def answer(ctx: Any) -> Any:
        return ctx.input

    task_id = f"inject-pipe-{secrets.token_hex(5)}"
    pipeline = Pipeline(
        [Stage("lookup", ["read:records:*"], lookup, tools=[tool]), Stage("answer", ["read:records:*"], answer)]
    )
    result = pipeline.run(client, orch_id="orch-inject", task_id=task_id, ceiling="read:records:*")
    return task_id, result


def test_scope_injection_is_refused_by_pipeline_stage_tool_calls(client: Broker, wire: Wire) -> None:
    body = Body()
    baseline_task, baseline = _pipeline_run(client, body, {})
    assert baseline.output == []
    task_id, result = _pipeline_run(client, body, all_values())
    assert result.output == [False] * len(all_values())
    assert_nothing_minted(wire, task_id, body, baseline=minted_for(wire, baseline_task))
    control_task, control = _pipeline_run(client, body, {"ok": "P-1"})
    assert control.output == [True]
    assert minted_for(wire, control_task)["delegation_created"] > minted_for(wire, baseline_task)["delegation_created"]


@pytest.mark.parametrize("declared", ["template", "function"])
def test_scope_injection_is_refused_by_pipeline_computed_stage_scopes(client: Broker, declared: str) -> None:
    from agentwrit_tools.errors import UnsafeArgumentError
    from agentwrit_tools.pipeline import Pipeline, Stage

    held: list[tuple[str, ...]] = []

    def triage(ctx: Any) -> dict[str, str]:
        return {"ticket": "*"}  # what a prompt-injected triage model might extract

    def respond(ctx: Any) -> str:
        held.append(tuple(ctx.scope))
        return "replied"

    scope: Any = (
        "read:records:{ticket}" if declared == "template" else (lambda found: f"read:records:{found['ticket']}")
    )
    pipeline = Pipeline([Stage("triage", ["read:records:*"], triage), Stage("respond", scope, respond)])
    task_id = f"inject-stage-{secrets.token_hex(5)}"
    with pytest.raises(UnsafeArgumentError):
        pipeline.run(client, orch_id="orch-inject", task_id=task_id, ceiling="read:records:*")
    assert held == [], f"the response stage ran holding {held!r}"


def test_scope_injection_corpus_is_refused_by_pipeline_stage_scope_templates(client: Broker, wire: Wire) -> None:
    """Every corpus value a model could hand the next stage is refused before that stage is minted anything."""
    from agentwrit_tools.errors import AgentWritError
    from agentwrit_tools.pipeline import Pipeline, Stage

    held: list[tuple[str, ...]] = []

    def respond(ctx: Any) -> str:
        held.append(tuple(ctx.scope))
        return "replied"

    def run(value: Any, *, with_next: bool = True) -> str:
        task_id = f"inject-tpl-{secrets.token_hex(5)}"
        stages = [Stage("triage", ["read:records:*"], lambda ctx: {"ticket": value})]
        if with_next:
            stages.append(Stage("respond", "read:records:{ticket}", respond))
        try:
            Pipeline(stages).run(client, orch_id="orch-inject", task_id=task_id, ceiling="read:records:*")
        except AgentWritError:
            return "refused:" + task_id
        return task_id

    baseline = minted_for(wire, run("P-1", with_next=False))
    for name, value in CORPUS.items():
        outcome = run(value)
        assert outcome.startswith("refused:"), name
        assert held == [], (name, held)
        # Minted for the refused run: what a triage-only run mints, nothing for the next stage.
        assert minted_for(wire, outcome.removeprefix("refused:")) == baseline, name
    control = minted_for(wire, run("P-1"))
    assert control["delegation_created"] > baseline["delegation_created"]
    assert held == [("read:records:P-1",)]


# ---- the resource side ----------------------------------------------------------------------------------------


def test_scope_injection_is_refused_by_resource_require(local_verifier: Any, client: Broker) -> None:
    """A caller holding ``read:records:*`` must still be refused a parameter that is not a plain identifier."""
    from agentwrit_tools.resource import AccessRefused, require

    holder = client.mint("read:records:*", orch_id="orch-inject", task_id=f"inject-rs-{secrets.token_hex(4)}")
    try:
        for name, value in CORPUS.items():
            with pytest.raises(AccessRefused) as refused:
                require(
                    local_verifier,
                    holder.access_token,
                    "read:records:{patient_id}",
                    params={"patient_id": value},
                    access_log=None,
                )
            assert (refused.value.status_code, refused.value.error_code) == (400, "invalid_request"), name
        assert require(local_verifier, holder.access_token, "read:records:{patient_id}", params={"patient_id": "P-1"})
    finally:
        holder.release()


def test_scope_injection_is_refused_by_resource_http_path_and_query(records_url: str, client: Broker) -> None:
    from urllib.parse import quote

    holder = client.mint("read:records:*", orch_id="orch-inject", task_id=f"inject-http-{secrets.token_hex(4)}")
    try:
        with httpx.Client(base_url=records_url, headers=bearer(holder.access_token), timeout=30) as http:
            for name, value in CORPUS.items():
                by_path = http.get("/records/" + quote(value, safe=""))
                # A value with '/' (once decoded) matches no route: refused all the same, and never served.
                assert by_path.status_code in (400, 404), (name, by_path.status_code, by_path.text[:200])
                by_query = http.get("/search", params={"patient_id": value})
                assert by_query.status_code == 400, (name, by_query.status_code, by_query.text[:200])
                assert by_query.json()["error_code"] == "invalid_request"
            assert http.get("/records/P-1").status_code == 200
            assert http.get("/search", params={"patient_id": "P-1"}).status_code == 200
    finally:
        holder.release()


def test_scope_injection_corpus_is_what_the_issue_lists() -> None:
    """The corpus keeps the payloads the issue names (so a trimmed corpus fails here, not silently)."""
    values = set(CORPUS.values())
    for needed in ("*", "x:*", "a:b", "../x", "%2A", "a%3Ab", "", "P" * 10_000):
        assert needed in values
    for char in ("\uff1a", "\ua789", "\u2236", "\u2217", "\uff0a", "\u204e", " ", "\n"):
        assert any(char in value for value in values)
