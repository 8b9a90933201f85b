# make report: build the book into _build/html.  make test: run the test suite.
# make publish: make the current results the published edition (results/published/).
# make pdf: print the whole book to _build/pdf/report.pdf (needs Debian's chromium).
# make site-check: open every built page in headless Chromium (tests/test_site.py).
# make check-book: the tests of the built book, PDF and site (after make report and make pdf).
# make lint: ruff and the import-layer contract (make test runs it first).
# Both create .venv on first use (uv when present, else pip).
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: report test lint check-book data results fetch clean-venv pdf site-check publish

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

lint: $(STAMP)
	.venv/bin/ruff check analysis tests benchmarks
	.venv/bin/lint-imports --no-cache

# Hermetic: builds what it needs in a temporary folder, never touches data/processed,
# results or _build; the order is shuffled (pytest-randomly). Book checks: check-book.
# Two workers (pytest-xdist), one test file per worker at a time (--dist loadfile), so a
# file's module fixtures are built once; the session's real panel and results are built
# once and shared (tests/conftest.py). -rs prints the reason of every skip.
test: lint
	$(PY) -m pytest -q -rs -m "not book" -n 2 --dist loadfile $(PYTEST_ARGS)

# The built book, its PDF and its pages in headless Chromium (needs make report, make pdf).
# Two workers: the child-level book (a whole second build) beside the other checks.
check-book: $(STAMP)
	SOS_CHECK_BOOK=1 SOS_REQUIRE_BOOK=1 $(PY) -m pytest -q -rs -m book -p no:randomly -n 2 --dist loadfile

# Each step runs only when its inputs changed (keys in data/processed/.key,
# results/.key, _build/html/.build-key); the book is built clean in a staging
# folder and replaces _build/html only when it builds without warnings.
report: $(STAMP)
	$(PY) -m analysis build

# Make the current results the published edition (results/published/, committed).
publish: $(STAMP)
	$(PY) -m analysis publish

# The single-page edition reuses the environment of the HTML build (same
# _build/.doctrees), so after `make report` no chapter runs again; without an
# HTML build, `make report` runs first. Chromium prints it offline.
pdf: $(STAMP)
	@$(PY) -m analysis.book.browser check >/dev/null || { echo "make pdf: cannot print without a headless Chromium" >&2; exit 1; }
	@test -f _build/html/index.html || $(MAKE) report
	.venv/bin/jupyter-book build --warningiserror --keep-going --builder singlehtml .
	$(PY) -m analysis.book.browser pdf --out _build/pdf/report.pdf

site-check: $(STAMP)
	SOS_CHECK_BOOK=1 $(PY) -m pytest -q -m browser tests/test_site.py

clean-venv:
	rm -rf .venv
