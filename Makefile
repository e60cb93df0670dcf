# Touchpoint: `make demo` runs the product on the embedded default, `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# An interpreter of 3.12 or newer: PYTHON=..., else python3.13/python3.12 on PATH or under pyenv.
PYTHON ?= $(shell for p in python3.13 python3.12 $(HOME)/.pyenv/versions/3.13*/bin/python3 $(HOME)/.pyenv/versions/3.12*/bin/python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p; break; }; done)
HOST ?= 127.0.0.1
PORT ?= 8000
CUSTOMERS ?= 200

.PHONY: demo test env lint check serve clean bench

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python 3.12+ found: install one or pass PYTHON=/path/to/python3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

env: $(VENV)/.installed
	$(PY) manage.py compiletranslations

demo: env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --customers $(CUSTOMERS)
	$(PY) manage.py demo_links --base-url http://$(HOST):$(PORT)
	TOUCHPOINT_BASE_URL=http://$(HOST):$(PORT) $(VENV)/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT)

test: env lint
	DB_CONN_MAX_AGE=0 $(VENV)/bin/pytest -p no:cacheprovider

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

bench: env
	$(PY) bench/bill_run.py
	$(PY) bench/invoice_page.py
	$(PY) bench/pdf.py
	$(PY) bench/chat.py
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) var media staticfiles
