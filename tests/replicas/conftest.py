"""Three CLI-started broker replicas over one PostgreSQL database, shared by the module that asks for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from replica_support import Replicas


@pytest.fixture(scope="module")
def replicas(postgres: Any) -> Iterator[Replicas]:
    with postgres.database("replicas") as url, Replicas(url, 3) as running:
        yield running


@pytest.fixture(scope="module")
def admin(replicas: Replicas) -> str:
    return replicas.admin_token(0)
