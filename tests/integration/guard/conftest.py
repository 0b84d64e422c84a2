"""Fixtures for the guard suite: the shared ones of ``tests/conftest.py`` with this suite's app scopes.

The app's ceiling (``read:records:*``, ``write:notes:*``) covers every task ceiling used here, so any denial
seen in these tests comes from the task ceiling — the guard's check or the launcher's ``allowed_scope`` — never
from the app.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def app_scopes() -> list[str]:
    return ["read:records:*", "write:notes:*"]
