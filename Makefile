# c3n-bot. `make run`: the demo on http://localhost:8000. `make test`: every check CI runs.
# Needs only GNU make and Python 3.11+ (PYTHON=python3.12 make ... to pick another one).

SHELL := /bin/bash
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
CHROMIUM := /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help run test lint format clean i18n bench bench-quick drills

help:
	@echo "make run     install, migrate ./c3n.db, seed the demo, serve on http://localhost:$(PORT)"
	@echo "make test    ruff, mypy --strict, import contracts, pytest on SQLite and PostgreSQL"
	@echo "            (installs Debian's chromium for the browser test when it is missing)"
	@echo "make lint    the static checks of make test, without pytest"
	@echo "make format  apply ruff's formatting and safe fixes"
	@echo "make clean   remove .venv and caches (keeps the c3n.db database)"
	@echo "make i18n    extract texts to locales/messages.pot and merge them into locales/*/messages.po"
	@echo "make bench   every benchmark, then one table of figure / baseline / ratio / goal: inbound,"
	@echo "             dispatch, fan-out, export, dashboard, broadcast, and on PostgreSQL the Procfile"
	@echo "             topology, its fault drills and 5 minutes of load (about an hour)"
	@echo "make bench-quick  the same, shortened (about 15 minutes)"
	@echo "make drills  the fault drills: kill -9 of a worker and of a web process, a PostgreSQL"
	@echo "             restart, provider storms, webhooks delivered five times"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "c3n-bot needs Python 3.11 or newer; '$(PYTHON)' is not. Try: make PYTHON=python3.11 ..." >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)

# pip 25.1 is the first to install PEP 735 dependency groups (--group dev).
$(VENV)/.pip-stamp: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	@touch $@

# Stamps make repeated runs instant, and reinstall whenever pyproject.toml changes.
$(VENV)/.run-stamp: pyproject.toml $(VENV)/.pip-stamp
	$(BIN)/python -m pip install --quiet --editable .
	@touch $@

$(VENV)/.dev-stamp: pyproject.toml $(VENV)/.pip-stamp
	$(BIN)/python -m pip install --quiet --editable . --group dev
	@touch $@

# Demo mode: no secret needed, and the demo logins may be seeded.
run: export C3N_DEMO := 1
run: export C3N_PUBLIC_URL ?= http://localhost:$(PORT)
run: $(VENV)/.run-stamp
	$(BIN)/c3n-bot migrate
	$(BIN)/c3n-bot demo
	$(BIN)/c3n-bot serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint $(CHROMIUM)
	$(BIN)/pytest

# The browser test drives Debian's Chromium (Playwright's own browser builds are never fetched).
# Installed once when missing; a machine where this fails fails `make test`, as it should.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium

format: $(VENV)/.dev-stamp
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Translations: flows, engine texts and templates -> locales/messages.pot -> each catalog.
# The template is replaced only when more than its date changed, so diffs show real changes;
# then translate the new empty msgstr entries in locales/es/LC_MESSAGES/messages.po.
POT := locales/messages.pot
i18n: $(VENV)/.run-stamp
	$(BIN)/pybabel -q extract -F babel.cfg -o $(POT).new --no-location --sort-output \
	  --project=c3n-bot --copyright-holder="the c3n-bot authors" .
	@if [ -f $(POT) ] && diff -q -I '^"POT-Creation-Date: ' -I '^# ' $(POT) $(POT).new >/dev/null; \
	  then rm $(POT).new; else mv $(POT).new $(POT); fi
	$(BIN)/pybabel update -i $(POT) -d locales -D messages --no-fuzzy-matching \
	  --ignore-pot-creation-date

# Every benchmark runs even when one fails (run_all), then one table; the target fails when any
# goal was missed. bench-quick: the same, shortened. drills: the fault drills alone.
bench: $(VENV)/.dev-stamp
	$(BIN)/python -m bench.run_all

bench-quick: $(VENV)/.dev-stamp
	$(BIN)/python -m bench.run_all --quick

drills: $(VENV)/.dev-stamp
	$(BIN)/python -m bench.drills
