"""What is committed of each notebook: prose between the code, outputs only where small and worth showing,
no secrets, no paths of the machine that ran it, and the project's kernel (``commit_problems``)."""

from __future__ import annotations

import nbformat
import pytest
from notebook_support import KEEP_OUTPUT, KERNEL_NAME, NOTEBOOK_NAMES, NOTEBOOKS, commit_problems, read, stripped

REFRESH = "refresh it with: .venv/bin/python tests/notebooks/notebook_support.py NAME.ipynb"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_notebook_is_clean(name: str) -> None:
    nb = read(NOTEBOOKS / f"{name}.ipynb")
    nbformat.validate(nb)
    assert commit_problems(nb) == [], REFRESH
    assert any(cell.outputs for cell in nb.cells if cell.cell_type == "code"), "something worth showing is kept"


def _notebook_that_breaks_every_rule() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    printed = nbformat.v4.new_output(
        "stream", name="stdout", text="token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2ln from /root/project\n"
    )
    warned = nbformat.v4.new_output("stream", name="stderr", text="DeprecationWarning\n")
    untagged = nbformat.v4.new_code_cell("print(token)", execution_count=3, outputs=[printed])
    tagged = nbformat.v4.new_code_cell("warn()", outputs=[warned], metadata={"tags": [KEEP_OUTPUT]})
    nb.cells = [untagged, tagged, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = 2")]
    return nb


def test_the_rules_catch_what_must_not_be_committed() -> None:
    problems = commit_problems(_notebook_that_breaks_every_rule())
    assert problems == [
        f"its kernel is not {KERNEL_NAME!r}",
        "it does not open with a markdown title",
        "4 code cells in a row without prose",
        "it does not end with the cell that stops what it started (stack.close())",
        "execution counts or timings are left in",
        f"code cells [0] carry outputs without the {KEEP_OUTPUT!r} tag",
        "an output shows an error or stderr",
        "it holds something that looks like a token or a secret",
        "it holds a path of the machine that ran it",
    ]


def test_refreshing_strips_what_is_not_kept() -> None:
    clean = stripped(_notebook_that_breaks_every_rule())
    untagged, tagged = clean.cells[0], clean.cells[1]
    assert untagged.outputs == []
    assert untagged.execution_count is None
    assert tagged.outputs != []  # kept: the tag says it is worth showing
