# `make demo` and `make test` set up .venv/ (only when requirements or setup.py changed) and run.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
SHARED ?= $(abspath ../shared)
PYTEST_ARGS ?=

.PHONY: demo test test-quick venv bench clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/curate demo --out demo-output

test: $(STAMP)
	NLTK_DATA=$${NLTK_DATA:-$(SHARED)/nltk_data} $(VENV)/bin/python -m pytest -q $(PYTEST_ARGS) tests

# the layers without Spark (tests/pure, tests/udfs): ~30 s
test-quick: $(STAMP)
	NLTK_DATA=$${NLTK_DATA:-$(SHARED)/nltk_data} $(VENV)/bin/python -m pytest -q $(PYTEST_ARGS) tests/pure tests/udfs

clean:
	rm -rf demo-output .pytest_cache
