"""Running the notebooks under ``notebooks/`` the way a person would, and checking what is committed of them.

A notebook runs in a real IPython kernel of the interpreter running the tests (the project's ``.venv``), started
from a kernelspec installed the way ``make notebooks`` installs it, but into a temporary prefix, so nothing is
written into the venv or the user's home. The kernel sees no model or broker settings from the environment: the
notebooks must run offline, on their defaults (the stand-in model, the embedded broker).

Committed notebooks carry outputs only on cells tagged ``keep-output`` (small ones worth showing); everything
else is cleared. After editing a notebook, refresh it with::

    .venv/bin/python tests/notebooks/notebook_support.py            # every notebook
    .venv/bin/python tests/notebooks/notebook_support.py 05_revocation_expiry_audit.ipynb
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_NAMES = [
    "01_quickstart",
    "02_openai_tools",
    "03_langchain_tools",
    "04_delegation_pipeline",
    "05_revocation_expiry_audit",
]
KERNEL_NAME = "agentwrit-tools"
"""The kernelspec ``make notebooks`` registers in the venv, and the one every committed notebook names."""
KEEP_OUTPUT = "keep-output"
"""The tag of a cell whose (small) output is committed."""
CELL_TIMEOUT = 60
"""Seconds one cell may run; the notebooks take a few seconds each."""
MAX_KEPT_CELL = 40_000
"""Bytes of output one kept cell may carry (the one chart, as PNG, is the largest)."""
MAX_KEPT_TOTAL = 60_000
MAX_CODE_RUN = 3
"""Code cells in a row without a word of prose in between."""

# Settings that would point a notebook at a real model or broker: the suite runs the offline defaults.
_OUTSIDE_SETTINGS = re.compile(r"^(OPENAI_|LLM_|AGENTWRIT_)")

LOCAL_PATH = re.compile(r"(/root\b|/tmp\b|/work\b|/home/|/Users/|[A-Za-z]:\\\\Users)")
"""A path of the machine that ran the notebook: never part of a committed notebook."""
SECRET = re.compile(
    r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."  # a compact JWS (our tokens)
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # an OpenAI-style API key
    r"|(client_secret|admin_secret|api_key)\s*[=:]\s*['\"][^'\"]{12,}['\"]"  # a secret written out literally
)
"""A token or secret: never printed by a notebook, never committed."""


@dataclass(frozen=True)
class Kernel:
    """A kernelspec installed into a temporary prefix, and the kernel's own temporary directories."""

    prefix: Path
    runtime_dir: Path
    ipython_dir: Path
    matplotlib_dir: Path

    @property
    def kernels_dir(self) -> Path:
        return self.prefix / "share" / "jupyter" / "kernels"

    @property
    def argv(self) -> list[str]:
        spec = json.loads((self.kernels_dir / KERNEL_NAME / "kernel.json").read_text())
        return [str(part) for part in spec["argv"]]


@contextmanager
def installed_kernel() -> Iterator[Kernel]:
    """Install this interpreter's kernelspec into a temporary prefix, as ``make notebooks`` does into the venv."""
    with tempfile.TemporaryDirectory(prefix="agentwrit-notebooks-") as tmp:
        kernel = Kernel(Path(tmp) / "prefix", Path(tmp) / "runtime", Path(tmp) / "ipython", Path(tmp) / "matplotlib")
        env = _kernel_env(kernel)
        install = ["ipykernel", "install", "--prefix", str(kernel.prefix), "--name", KERNEL_NAME]
        subprocess.run([sys.executable, "-m", *install], check=True, capture_output=True, text=True, env=env)
        # Build matplotlib's font cache now: on a fresh machine a slow build warns on the notebook's stderr.
        warm = [sys.executable, "-c", "import matplotlib.font_manager"]
        subprocess.run(warm, check=True, capture_output=True, text=True, env=env)
        yield kernel


def _kernel_env(kernel: Kernel) -> dict[str, str]:
    """The environment without model or broker settings, and with the kernel's files kept out of the home."""
    env = {k: v for k, v in os.environ.items() if not _OUTSIDE_SETTINGS.match(k)}
    env["JUPYTER_RUNTIME_DIR"] = str(kernel.runtime_dir)
    env["IPYTHONDIR"] = str(kernel.ipython_dir)
    env["MPLCONFIGDIR"] = str(kernel.matplotlib_dir)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # the kernel's debugger otherwise warns on stderr at start
    return env


def read(path: Path) -> Any:
    import nbformat

    return nbformat.read(path, as_version=4)


def execute(nb: Any, kernel: Kernel, *, cwd: Path = NOTEBOOKS, env: Mapping[str, str] | None = None) -> Any:
    """Run every cell of ``nb`` in order in a fresh kernel; return the executed notebook.

    ``env`` adds to the kernel's environment (which otherwise holds no model or broker settings).

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (an ``assert`` in a check cell included); the
            cells after it did not run.
        nbclient.exceptions.CellTimeoutError: a cell ran longer than :data:`CELL_TIMEOUT`.
    """
    import zmq
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    specs = KernelSpecManager(kernel_dirs=[str(kernel.kernels_dir)])
    kernel.runtime_dir.mkdir(parents=True, exist_ok=True)
    connection = kernel.runtime_dir / f"kernel-{uuid.uuid4().hex}.json"
    # CurveZMQ keys for the kernel's sockets when pyzmq has them (else the kernel warns about plain TCP).
    encryption = "auto" if zmq.has("curve") else "disabled"
    manager = AsyncKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=specs,
        connection_file=str(connection),
        transport_encryption=encryption,
    )
    client = NotebookClient(nb, km=manager, timeout=CELL_TIMEOUT, kernel_name=KERNEL_NAME, allow_errors=False)
    return client.execute(cleanup_kc=True, cwd=str(cwd), env={**_kernel_env(kernel), **(env or {})})


LEAK_CHECK_PASSED = "nothing left running"
_LEAK_BASELINE = """\
import psutil as _psutil

def _listening():
    return {(c.laddr.ip, c.laddr.port) for c in _psutil.Process().net_connections("inet") if c.status == "LISTEN"}

_listening_before = _listening()
"""
_LEAK_CHECK = f"""\
import threading as _threading

_left = sorted(_listening() - _listening_before)
assert _left == [], f"the notebook left these sockets listening: {{_left}}"
_threads = [t.name for t in _threading.enumerate() if t.name.startswith(("agentwrit-broker", "agentwrit-stand-in"))]
assert _threads == [], f"the notebook left these threads running: {{_threads}}"
print({LEAK_CHECK_PASSED!r})
"""


def with_leak_checks(nb: Any) -> Any:
    """A copy of ``nb`` between two cells of the suite's own: the last fails unless the notebook closed every
    socket it opened and left no embedded broker or stand-in thread running."""
    import copy

    import nbformat

    checked = copy.deepcopy(nb)
    checked.cells = [nbformat.v4.new_code_cell(_LEAK_BASELINE), *checked.cells, nbformat.v4.new_code_cell(_LEAK_CHECK)]
    return checked


def code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def output_text(output: Any) -> str:
    """Everything an output shows as text (images are left out: they are checked by size)."""
    if output.output_type == "stream":
        return str(output.text)
    if output.output_type == "error":
        return "\n".join([output.ename, output.evalue, *output.traceback])
    data = output.get("data", {})
    return "\n".join(str(value) for key, value in data.items() if not key.startswith("image/"))


def outputs_size(cell: Any) -> int:
    return len(json.dumps(cell.get("outputs", [])))


def stripped(nb: Any) -> Any:
    """``nb`` as it is committed: outputs kept only on cells tagged ``keep-output``, no execution counts."""
    import copy

    clean = copy.deepcopy(nb)
    for cell in code_cells(clean):
        cell.execution_count = None
        for output in cell.get("outputs", []):
            if "execution_count" in output:
                output.execution_count = None
        if KEEP_OUTPUT not in cell.metadata.get("tags", []):
            cell.outputs = []
        cell.metadata.pop("execution", None)
    clean.metadata.pop("widgets", None)
    return clean


def commit_problems(nb: Any) -> list[str]:
    """What keeps ``nb`` from being committed as it is (an empty list: nothing).

    It must run on the project's kernel, open with its title, explain each step in prose (at most
    :data:`MAX_CODE_RUN` code cells in a row), end with the cell that stops what it started, and carry outputs
    only on cells tagged ``keep-output``, small, without errors or stderr, and with no secret or local path
    anywhere in the file.
    """
    problems: list[str] = []
    if nb.metadata.get("kernelspec", {}).get("name") != KERNEL_NAME:
        problems.append(f"its kernel is not {KERNEL_NAME!r}")
    first, last = nb.cells[0], nb.cells[-1]
    if first.cell_type != "markdown" or not first.source.startswith("# "):
        problems.append("it does not open with a markdown title")
    runs = [len(list(group)) for kind, group in itertools.groupby(c.cell_type for c in nb.cells) if kind == "code"]
    if max(runs, default=0) > MAX_CODE_RUN:
        problems.append(f"{max(runs)} code cells in a row without prose")
    if last.cell_type != "code" or "stack.close()" not in last.source:
        problems.append("it does not end with the cell that stops what it started (stack.close())")
    cells = code_cells(nb)
    if any(cell.execution_count is not None or "execution" in cell.metadata for cell in cells):
        problems.append("execution counts or timings are left in")
    untagged = [i for i, cell in enumerate(cells) if cell.outputs and KEEP_OUTPUT not in cell.metadata.get("tags", [])]
    if untagged:
        problems.append(f"code cells {untagged} carry outputs without the {KEEP_OUTPUT!r} tag")
    kept = [cell for cell in cells if cell.outputs]
    if any(outputs_size(c) > MAX_KEPT_CELL for c in kept) or sum(map(outputs_size, kept)) > MAX_KEPT_TOTAL:
        problems.append("its outputs are too large")
    outputs = [output for cell in kept for output in cell.outputs]
    if any(o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr") for o in outputs):
        problems.append("an output shows an error or stderr")
    text = json.dumps(nb)
    if SECRET.search(text):
        problems.append("it holds something that looks like a token or a secret")
    if LOCAL_PATH.search(text):
        problems.append("it holds a path of the machine that ran it")
    return problems


def refresh(path: Path, kernel: Kernel) -> None:
    """Execute a notebook and write it back as it is committed (see :func:`stripped`)."""
    import nbformat

    executed = execute(read(path), kernel)
    nbformat.write(stripped(executed), path)


def main(argv: list[str]) -> int:
    paths = [NOTEBOOKS / name for name in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    with installed_kernel() as kernel:
        for path in paths:
            print(f"refreshing {path.name}", flush=True)
            refresh(path, kernel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
