PY ?= $(shell [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)

.PHONY: install demo test test-fast lint bench

install:
	@[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q -e '.[dev]'

demo:
	$(PY) -m naap_site.launch demo

test:
	$(PY) -m naap_site.launch check-services
	$(PY) -m pytest

test-fast:
	$(PY) -m pytest -m "not slow and not browser"

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

bench:
	$(PY) -m benchmarks
