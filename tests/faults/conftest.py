"""The fault suite's markers: ``soak`` (the full 10 000-call run, ``make soak``) stays out of the normal run."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the full fault soak (run with make soak)")
