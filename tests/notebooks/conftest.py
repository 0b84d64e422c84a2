"""The notebook suite's kernel: this interpreter's, from a kernelspec installed for the session into a temp prefix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from notebook_support import Kernel, installed_kernel

pytest.importorskip("nbclient", reason="the notebook suite needs the [notebooks] extra (make setup installs it)")


@pytest.fixture(scope="session")
def kernel() -> Iterator[Kernel]:
    with installed_kernel() as installed:
        yield installed
