# Every target sets itself up: a fresh clone needs nothing but python3 (>= 3.10) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck fmt bench soak check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev,notebooks]'
	touch $(STAMP)

# Every scenario of both demos in the terminal, on the embedded broker and the stand-in model, each run ending with
# its exposure summary and wall time.
demo: $(STAMP)
	$(BIN)/agentwrit-tools demo medassist --scenario all
	$(BIN)/agentwrit-tools demo tickets --scenario all

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check agentwrit_tools demo_medassist demo_tickets tests benchmarks
	$(BIN)/ruff check agentwrit_tools demo_medassist demo_tickets tests benchmarks

fmt: $(STAMP)
	$(BIN)/ruff format agentwrit_tools demo_medassist demo_tickets tests benchmarks
	$(BIN)/ruff check --fix agentwrit_tools demo_medassist demo_tickets tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Where one guarded call spends its time, before and after the fast path: flame graphs (SVG) of client and broker.
.PHONY: profile
profile: $(STAMP)
	$(BIN)/python -m benchmarks.profile_call --flamegraphs profiles

# 10 000 guarded calls through a fault-injecting proxy, broker restarts included; prints the figures.
soak: $(STAMP)
	AGENTWRIT_SOAK_CALLS=$${AGENTWRIT_SOAK_CALLS:-10000} $(BIN)/python -m pytest tests/faults -m soak -s -q -p no:cacheprovider

check: lint typecheck test

# JupyterLab on notebooks/, their kernel the project's .venv (registered inside the venv, not in the home directory).
.PHONY: notebooks
notebooks: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name agentwrit-tools --display-name "agentwrit-tools (.venv)" >/dev/null
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(JUPYTER_ARGS)

# The notebooks are linted and formatted with the rest of the code.
.PHONY: lint-notebooks fmt-notebooks
lint: lint-notebooks
fmt: fmt-notebooks
lint-notebooks: $(STAMP)
	$(BIN)/ruff format --check notebooks
	$(BIN)/ruff check notebooks

fmt-notebooks: $(STAMP)
	$(BIN)/ruff format notebooks
	$(BIN)/ruff check --fix notebooks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
