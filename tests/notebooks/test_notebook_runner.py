"""The runner the notebook tests rely on: a real kernel of this interpreter, and a failed check fails the run."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from notebook_support import LEAK_CHECK_PASSED, Kernel, code_cells, execute, output_text, with_leak_checks


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


def test_the_kernel_is_this_interpreter(kernel: Kernel, tmp_path: Path) -> None:
    assert kernel.argv[0] == sys.executable
    executed = execute(_notebook("import sys\nprint(sys.executable)"), kernel, cwd=tmp_path)
    [cell] = code_cells(executed)
    assert output_text(cell.outputs[0]).strip() == sys.executable


def test_a_failing_assertion_in_a_check_cell_fails_the_run_and_stops_it(kernel: Kernel, tmp_path: Path) -> None:
    nb = _notebook("value = 41", "assert value == 42, 'the check saw ' + str(value)", "print('never runs')")
    with pytest.raises(CellExecutionError) as failed:
        execute(nb, kernel, cwd=tmp_path)
    assert "AssertionError" in str(failed.value)
    assert "the check saw 41" in str(failed.value)
    never = code_cells(nb)[2]
    assert never.outputs == []


def test_an_error_in_any_cell_fails_the_run(kernel: Kernel, tmp_path: Path) -> None:
    with pytest.raises(CellExecutionError) as failed:
        execute(_notebook("import agentwrit_tools", "agentwrit_tools.no_such_thing"), kernel, cwd=tmp_path)
    assert "AttributeError" in str(failed.value)


def test_the_leak_check_catches_a_broker_left_running(kernel: Kernel, tmp_path: Path) -> None:
    leaky = _notebook("from agentwrit_tools.broker import EmbeddedBroker", "broker = EmbeddedBroker().start()")
    with pytest.raises(CellExecutionError) as failed:
        execute(with_leak_checks(leaky), kernel, cwd=tmp_path)
    assert "the notebook left these sockets listening" in str(failed.value)


def test_the_leak_check_passes_once_the_broker_is_stopped(kernel: Kernel, tmp_path: Path) -> None:
    tidy = _notebook("from agentwrit_tools.broker import EmbeddedBroker", "with EmbeddedBroker() as broker:\n    pass")
    executed = execute(with_leak_checks(tidy), kernel, cwd=tmp_path)
    assert output_text(code_cells(executed)[-1].outputs[0]).strip() == LEAK_CHECK_PASSED
