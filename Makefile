# The two commands of the quick start: `make demo` and `make test`. Both create .venv on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench openapi

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m naap_site.launch demo

test: $(STAMP)
	$(PY) -m naap_site.launch check-services
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

bench: $(STAMP)
	$(PY) -m benchmarks

openapi: $(STAMP)
	NAAP_SECRET_KEY=$${NAAP_SECRET_KEY:-openapi-export-only} $(PY) manage.py export_openapi
