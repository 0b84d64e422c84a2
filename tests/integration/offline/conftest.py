"""A stand-in model on loopback and real ``openai`` clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stand_in_support import RULES

from agentwrit_tools.offline import StandInModel

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandInModel]:
    with StandInModel(RULES) as model:
        yield model


@pytest.fixture
def client(stand_in: StandInModel) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as client:
        yield client
