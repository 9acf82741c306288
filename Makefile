# kyok — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kyok-installed

.PHONY: run test lint venv clean

venv: $(STAMP)

# (Re)install whenever pyproject.toml changes; the venv itself is made only when missing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# keyprotect 2.x has the same package name as 3.x: it lives aside and its tests run it in a
	# subprocess with this directory first on PYTHONPATH (it uses requests/cryptography from the venv).
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/keyprotect2 'keyprotect==2.3.1' 'redstone==0.6.2'
	touch $(STAMP)

## Start the server in dev mode on the embedded SQLite default (./kyok-data).
run: $(STAMP)
	$(BIN)/kyok server --dev

## Run the whole test suite (SQLite and, when it answers, PostgreSQL at 127.0.0.1:5432), on every
## core (pytest-xdist; PYTEST_ARGS="-n 0" runs it in one process).
PYTEST_ARGS ?= -n auto --dist worksteal
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff + mypy --strict on src/
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
