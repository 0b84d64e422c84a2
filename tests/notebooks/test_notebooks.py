"""Every notebook runs top to bottom in a real kernel of the project's interpreter, offline, and leaves nothing
running: one test per notebook. A cell that raises — an ``assert`` in a check cell included — fails its test.

Around the notebook's own cells the test adds two of its own (``with_leak_checks``): the notebook must close
every socket it opened (the embedded broker's port, the stand-in model's) and leave no broker or stand-in thread.
"""

from __future__ import annotations

import pytest
from notebook_support import (
    LEAK_CHECK_PASSED,
    NOTEBOOK_NAMES,
    NOTEBOOKS,
    SECRET,
    Kernel,
    code_cells,
    execute,
    output_text,
    read,
    with_leak_checks,
)

from agentwrit_tools.offline import StandInModel, parse_rules


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


# What a configured model would do for the notebooks' honest questions (served here, in the test process).
_ENDPOINT_RULES = parse_rules(
    {
        "rules": [
            {
                "name": "chart",
                "when": r"(?i)chart of (?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}}],
            },
            {
                "name": "record",
                "when": r"(?i)record of (?:patient )?(?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}}],
            },
        ]
    }
)


@pytest.mark.parametrize("name", ["02_openai_tools", "03_langchain_tools"])
def test_a_model_configured_by_the_environment_replaces_the_stand_in(name: str, kernel: Kernel) -> None:
    """``LLM_BASE_URL`` and ``LLM_MODEL`` point the honest runs at another OpenAI-compatible endpoint."""
    with StandInModel(_ENDPOINT_RULES) as endpoint:
        settings = {"LLM_BASE_URL": endpoint.base_url, "LLM_MODEL": "model-from-the-environment"}
        execute(with_leak_checks(read(NOTEBOOKS / f"{name}.ipynb")), kernel, env=settings)
        asked = [request["model"] for request in endpoint.requests]
    assert len(asked) >= 2  # a tool call, then the answer
    assert set(asked) == {"model-from-the-environment"}
