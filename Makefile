# Every target that runs code installs first, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export WALRUS_NUMBA_CACHE ?= $(CURDIR)/.numba-cache
BENCH_DURATION ?= 5

.PHONY: install test test-fast lint format demo gate bench bench-compare docs screenshots clean

# Python packages into .venv, then the host tools tests and commands need (harness/tools.py:
# installed with apt when root, else listed; what needs a missing one is skipped or refused).
install: $(VENV)/.installed
	@$(PY) -m harness.tools install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench,docs]'
	touch $@

test: install
	$(PY) -m pytest -q -m 'slow or not slow' --durations=25

test-fast: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: install
	$(VENV)/bin/walrus-harness test --nodes 3 --time-limit 60 --nemesis partition,kill \
	    --nemesis-interval 10 --seed 1 --name demo --store results/runs

gate: install
	$(VENV)/bin/walrus-harness gate --store results/runs

bench: install
	$(VENV)/bin/walrus-harness bench storage --duration $(BENCH_DURATION) \
	    --json results/reference/storage.json --plot results/reference/storage.png

# Systems side by side (our node, Redis Streams, NATS JetStream, and the original Walrus when
# WALRUS_RS_SRC names its source tree): the committed figures under results/reference/compare/.
bench-compare: install
	$(VENV)/bin/walrus-harness bench compare --out results/reference/compare

# The documentation site (mkdocs.yml) into build/site; --strict: a broken link or a page missing
# from the nav fails it. NO_MKDOCS_2_WARNING quiets Material's notice about its own end of life,
# printed on every build, which says nothing about these pages.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The results browser's screenshots in docs/images/, from fresh runs (docs/screenshots.py).
screenshots: install
	$(PY) docs/screenshots.py

clean:
	rm -rf $(VENV) .numba-cache .pytest_cache .ruff_cache .mypy_cache .hypothesis
