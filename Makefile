# make report: build the book into _build/html.  make test: run the test suite.
# Both create .venv on first use (uv when present, else pip).
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: report test data results fetch clean-venv

$(STAMP): pyproject.toml
	@if command -v uv >/dev/null 2>&1; then \
	  uv venv --quiet --allow-existing .venv && VIRTUAL_ENV=$(CURDIR)/.venv uv pip install --quiet -e '.[test]'; \
	else \
	  python3 -m venv .venv && $(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet -e '.[test]'; \
	fi
	@touch $(STAMP)

fetch: $(STAMP)
	$(PY) -m analysis fetch

data: $(STAMP)
	$(PY) -m analysis data

results: $(STAMP)
	$(PY) -m analysis results

test: $(STAMP)
	$(PY) -m pytest -q

report: $(STAMP)
	$(PY) -m analysis data
	.venv/bin/jupyter-book build --warningiserror --keep-going .

clean-venv:
	rm -rf .venv
