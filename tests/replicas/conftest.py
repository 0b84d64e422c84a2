"""Three CLI-started broker replicas over one PostgreSQL database, shared by the module that asks for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from replica_support import Replicas


@pytest.fixture(scope="module")
def replicas(postgres: Any) -> Iterator[Replicas]:
    url = postgres.create_database("replicas")
    try:
        with Replicas(url, 3) as running:
            yield running
    finally:
        postgres.drop_database(url)


@pytest.fixture(scope="module")
def admin(replicas: Replicas) -> str:
    return replicas.admin_token(0)
