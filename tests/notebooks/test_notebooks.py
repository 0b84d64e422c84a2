"""Every notebook runs top to bottom in a real kernel of the project's interpreter, offline, and leaves nothing
running: one test per notebook. A cell that raises — an ``assert`` in a check cell included — fails its test.

Around the notebook's own cells the test adds two of its own (``with_leak_checks``): the notebook must close
every socket it opened (the embedded broker's port, the stand-in model's) and leave no broker or stand-in thread.
"""

from __future__ import annotations

import pytest
from notebook_support import (
    LEAK_CHECK_PASSED,
    NOTEBOOKS,
    SECRET,
    Kernel,
    code_cells,
    execute,
    output_text,
    read,
    with_leak_checks,
)

NOTEBOOK_NAMES = [
    "01_quickstart",
    "02_openai_tools",
    "03_langchain_tools",
    "04_delegation_pipeline",
    "05_revocation_expiry_audit",
]


def test_the_notebook_list_is_complete() -> None:
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == NOTEBOOK_NAMES


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_top_to_bottom_and_stops_what_it_started(name: str, kernel: Kernel) -> None:
    nb = read(NOTEBOOKS / f"{name}.ipynb")
    own = len(code_cells(nb))

    executed = execute(with_leak_checks(nb), kernel)

    cells = code_cells(executed)
    assert len(cells) == own + 2
    assert all(cell.execution_count for cell in cells)  # every cell ran, in order
    assert output_text(cells[-1].outputs[0]).strip() == LEAK_CHECK_PASSED
    outputs = [output for cell in cells for output in cell.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    # A reader sees no warnings or log noise, and never a token.
    assert [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"] == []
    assert not SECRET.search("\n".join(output_text(o) for o in outputs))
