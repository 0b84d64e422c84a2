"""Fixtures for the pipeline suite: the shared ones of ``tests/conftest.py`` (the real embedded broker over
loopback, an app per test, an operator client) with this suite's app scopes.

The app's ceiling covers every task ceiling used here, so a refusal in these tests comes from the pipeline (its
own check, or the broker refusing a registration under a stage's launcher or a delegation from a stage's token)
or from a stage's guard task — never from the app.
"""

from __future__ import annotations

import pytest
from pipeline_support import APP_SCOPES


@pytest.fixture(scope="session")
def app_scopes() -> list[str]:
    return APP_SCOPES
