"""What is committed of each notebook: prose between the code, outputs only where small and worth showing,
no secrets, no paths of the machine that ran it, and the project's kernel."""

from __future__ import annotations

import json
from itertools import groupby

import nbformat
import pytest
from notebook_support import (
    KEEP_OUTPUT,
    KERNEL_NAME,
    LOCAL_PATH,
    NOTEBOOKS,
    SECRET,
    code_cells,
    output_text,
    outputs_size,
    read,
)
from test_notebooks import NOTEBOOK_NAMES

MAX_KEPT_CELL = 40_000
"""Bytes of output one kept cell may carry (the one chart, as PNG, is the largest)."""
MAX_KEPT_TOTAL = 60_000
MAX_CODE_RUN = 3
"""Code cells in a row without a word of prose in between."""
REFRESH = "refresh it with: .venv/bin/python tests/notebooks/notebook_support.py"


@pytest.fixture(params=NOTEBOOK_NAMES)
def committed(request: pytest.FixtureRequest) -> tuple[str, str, nbformat.NotebookNode]:
    path = NOTEBOOKS / f"{request.param}.ipynb"
    return request.param, path.read_text(encoding="utf-8"), read(path)


def test_it_is_a_valid_notebook_on_the_project_kernel(committed: tuple[str, str, nbformat.NotebookNode]) -> None:
    _, _, nb = committed
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == KERNEL_NAME


def test_outputs_are_kept_only_where_tagged_and_small(committed: tuple[str, str, nbformat.NotebookNode]) -> None:
    name, _, nb = committed
    cells = code_cells(nb)
    assert all(cell.execution_count is None for cell in cells), f"{name}: execution counts left in; {REFRESH}"
    untagged = [i for i, cell in enumerate(cells) if cell.outputs and KEEP_OUTPUT not in cell.metadata.get("tags", [])]
    assert untagged == [], f"{name}: code cells {untagged} carry outputs; {REFRESH}"
    kept = [cell for cell in cells if cell.outputs]
    assert all(outputs_size(cell) <= MAX_KEPT_CELL for cell in kept)
    assert sum(outputs_size(cell) for cell in kept) <= MAX_KEPT_TOTAL
    for cell in kept:
        for output in cell.outputs:
            assert output.output_type != "error"
            assert not (output.output_type == "stream" and output.name == "stderr"), output_text(output)


def test_no_secret_and_no_local_path(committed: tuple[str, str, nbformat.NotebookNode]) -> None:
    name, text, nb = committed
    assert not SECRET.search(text), f"{name} holds something that looks like a token or a secret"
    assert not LOCAL_PATH.search(text), f"{name} holds a path of the machine that ran it"
    assert "execution" not in json.dumps([cell.metadata for cell in nb.cells])  # no timing metadata


def test_prose_explains_what_each_step_shows(committed: tuple[str, str, nbformat.NotebookNode]) -> None:
    name, _, nb = committed
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith("# "), f"{name} opens with its title"
    runs = [len(list(group)) for kind, group in groupby(cell.cell_type for cell in nb.cells) if kind == "code"]
    assert max(runs) <= MAX_CODE_RUN, f"{name}: {max(runs)} code cells in a row without prose"
    last = nb.cells[-1]
    assert last.cell_type == "code", f"{name} ends with its clean-up cell"
    assert "stack.close()" in last.source, f"{name} ends by stopping what it started"
