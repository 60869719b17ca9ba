# Two commands for a newcomer: `make run` (the bot; offline demo without a token) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench stack clean

# Everything from the hash-pinned lock (the build backend too, hence --no-build-isolation), then the
# project itself without resolving anything: a new upstream release cannot change what CI runs. No
# pip upgrade either (that would be an unpinned download): the venv's own pip reads the lock fine.
# After editing dependencies in pyproject.toml, regenerate both locks with the commands at their tops.
$(STAMP): pyproject.toml requirements-dev.lock requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m comet run

test: lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy comet/ instrumentation/ discord_emulator/

pytest: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) -m bench

stack: $(STAMP)
	$(PY) -m comet.ops.stack

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
