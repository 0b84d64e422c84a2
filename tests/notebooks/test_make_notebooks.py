"""``make notebooks`` opens JupyterLab on ``notebooks/`` with the project's ``.venv`` as the notebooks' kernel.

The real target runs (``make -o`` only keeps it from re-running setup), with JupyterLab told not to open a
browser and to listen on a free loopback port; the test then asks the server what a person's browser would.
JupyterLab's own files (runtime, config, workspaces) go to a temporary directory, not the user's home.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from notebook_support import KERNEL_NAME, NOTEBOOK_NAMES, NOTEBOOKS, ROOT

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=0 --IdentityProvider.token={token}"
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "notebooks", f"JUPYTER_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: make, and the JupyterLab it starts
    )
    assert proc.stderr is not None
    try:
        url, seen = None, []
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stderr], [], [], 1)
            if ready:
                line = proc.stderr.readline()
                seen.append(line)
                match = re.search(r"(http://127\.0\.0\.1:\d+)/lab", line)
                url = match.group(1) if match else None
        assert url is not None, "JupyterLab did not start:\n" + "".join(seen[-20:])
        yield url, {"Authorization": f"token {token}"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stderr.close()


def test_make_notebooks_serves_the_notebooks_with_the_venv_as_their_kernel(
    jupyterlab: tuple[str, dict[str, str]],
) -> None:
    url, auth = jupyterlab
    specs = httpx.get(f"{url}/api/kernelspecs", headers=auth, timeout=10).json()["kernelspecs"]
    argv = specs[KERNEL_NAME]["spec"]["argv"]
    assert Path(argv[0]) == VENV_PYTHON  # the kernel is the project's .venv, registered inside it
    assert "ipykernel_launcher" in argv

    listing = httpx.get(f"{url}/api/contents", headers=auth, timeout=10).json()["content"]
    assert sorted(item["name"] for item in listing if item["type"] == "notebook") == [
        f"{name}.ipynb" for name in NOTEBOOK_NAMES
    ]
    opened = httpx.get(f"{url}/api/contents/01_quickstart.ipynb", headers=auth, timeout=10).json()
    assert opened["content"]["metadata"]["kernelspec"]["name"] == KERNEL_NAME
    assert (NOTEBOOKS / "01_quickstart.ipynb").is_file()
