# Two commands for a fresh machine: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean screenshots

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	# byte-compile as a wheel install would (an editable install leaves the sources uncompiled)
	$(BIN)/python -m compileall -q src checks >/dev/null
	touch $@

demo: $(BIN)/.installed
	scripts/ensure-postgres
	scripts/ensure-backup-tools
	$(BIN)/maintcheck demo

lint: $(BIN)/.installed
	$(BIN)/ruff check src checks tests bench conftest.py
	$(BIN)/ruff format --check src checks tests bench conftest.py
	$(BIN)/mypy

test: $(BIN)/.installed lint
	scripts/ensure-postgres
	scripts/ensure-ops-tools
	scripts/ensure-tools
	scripts/ensure-services
	scripts/ensure-browser
	scripts/ensure-backup-tools
	$(BIN)/pytest tests -n 2 -p no:cacheprovider -q

# the README's pictures of report.html, index.html and the monthly review, from a fresh demo
screenshots: $(BIN)/.installed
	scripts/ensure-postgres
	scripts/ensure-browser
	$(BIN)/python scripts/screenshots.py

bench: $(BIN)/.installed
	scripts/ensure-postgres
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/restore.py
	scripts/ensure-backup-tools
	$(BIN)/python bench/plain_suite.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/physical_restore.py

clean:
	rm -rf $(VENV) reports/2* reports/.staging-*
