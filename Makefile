# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= encryption,airflow,celery,edge,dev,ui-tests,optimum,genai,hub-tests
# The optimum extra pins torch==2.13.0: its CPU wheel lies here on these machines (a bare torch is a multi-GB CUDA build).
WHEELS ?= /opt/wheels

.PHONY: venv demo test lint fmt bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --find-links $(WHEELS) -e '.[$(EXTRAS)]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The benchmarks also need the bench extra (matplotlib, for the plots); installed once, on top of $(EXTRAS).
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet --find-links $(WHEELS) -e '.[$(EXTRAS),bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
