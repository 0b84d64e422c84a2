"""A stage token replayed after the run ended is refused by a protected endpoint (the resource-side helpers)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pipeline_support import CEILING, KNOWLEDGE
from support import feed_reader

from agentwrit_tools import Broker, Verifier
from agentwrit_tools.pipeline import Pipeline, Stage, StageContext
from agentwrit_tools.resource.fastapi import Requires, install


def test_a_protected_endpoint_refuses_a_stage_token_replayed_after_the_run(
    broker: Any, client: Broker, task_id: str
) -> None:
    api = FastAPI()
    install(api)
    # Verifies locally (JWKS + revocation feed); a bound of 0 syncs the feed on every check, so there is no
    # window to wait out (with the default bound of 1 s, the replay would be refused at most 1 s later).
    verifier = Verifier(broker.url, revocation_bound=0, **feed_reader(broker))
    read_article = Requires(verifier, "read:kb:{article}", access_log=None)

    @api.get("/kb/{article}", dependencies=[Depends(read_article)])
    def article(article: str) -> dict[str, str]:
        return {"article": article}

    seen: dict[str, Any] = {}

    def knowledge(ctx: StageContext) -> int:
        seen["token"] = ctx.credential.access_token
        with TestClient(api) as http:
            return http.get("/kb/kb-1", headers=ctx.credential.bearer_header).status_code

    try:
        result = Pipeline([Stage("knowledge", KNOWLEDGE, knowledge)]).run(
            client, orch_id="desk", task_id=task_id, ceiling=CEILING
        )
        assert result.output == 200  # the stage's token works while the run holds it...
        with TestClient(api) as http:
            replay = http.get("/kb/kb-1", headers={"Authorization": f"Bearer {seen['token']}"})
        assert verifier.verification_mode == "local"
    finally:
        verifier.close()
    assert replay.status_code in (401, 403)  # ...and not after
    assert replay.headers["content-type"].startswith("application/problem+json")
    assert seen["token"] not in replay.text
