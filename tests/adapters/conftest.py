"""Fixtures for the adapter suite: the shared ones of ``tests/conftest.py`` (the real embedded broker over
loopback, an app per test, an operator client) with this suite's app scopes, a live stand-in model and real
``openai`` clients pointed at it.

The app's ceiling covers every task ceiling used here, so a denial in these tests comes from the task (the
guard's check or the broker's launch-token ceiling) or from the scope template — never from the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from adapter_support import APP_SCOPES, RULES

from agentwrit_tools.offline import StandInModel

openai = pytest.importorskip("openai")


@pytest.fixture(scope="session")
def app_scopes() -> list[str]:
    return APP_SCOPES


@pytest.fixture(scope="session")
def stand_in() -> Iterator[StandInModel]:
    with StandInModel(RULES) as model:
        yield model


@pytest.fixture
def model(stand_in: StandInModel) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as model_client:
        yield model_client


@pytest.fixture
async def amodel(stand_in: StandInModel) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as model_client:
        yield model_client
