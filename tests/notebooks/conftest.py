"""The notebook suite's kernel: this interpreter's, from a kernelspec installed for the session into a temp prefix.

The suite needs the ``[notebooks]`` extra, which ``make setup`` installs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from notebook_support import Kernel, installed_kernel


@pytest.fixture(scope="session")
def kernel() -> Iterator[Kernel]:
    with installed_kernel() as installed:
        yield installed
