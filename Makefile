# The README's two commands: `make demo` runs the main job, `make test` passes the tests.
# Each creates its own virtual environment on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test venv lint bench clean system-packages

$(BIN)/gateway: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/gateway

venv: $(BIN)/gateway

demo: venv system-packages
	$(BIN)/gateway demo

# sshd (the demo's and the tests'), Chromium, wrk and a CJK font, installed in one visible place
# (tests/system-packages.sh); the demo and the tests only check that they are there.
system-packages:
	bash tests/system-packages.sh

test: venv system-packages
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: venv
	$(BIN)/ruff check gateway adapters tests bench
	$(BIN)/mypy gateway adapters
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo-data .pytest_cache
