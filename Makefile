# The two commands a user needs (see README):
#   make quickstart   set up .venv if needed, then run the main job
#   make test         set up .venv if needed, then run the test suite
#   make lint         ruff (style, imports) and mypy (types) over the package and its tests
#   make notebook     add JupyterLab to .venv, then open notebooks/ (the .py files open as notebooks)
# All are idempotent: the environment is rebuilt only when pyproject.toml or
# constraints.txt change, so a second call starts at once.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.genlab-installed
PY     := $(VENV)/bin/python
NB_STAMP := $(VENV)/.genlab-notebook-installed
# JupyterLab reads overrides.json in its application settings folder inside the environment:
# Python files open with jupytext's notebook viewer there, and nothing outside .venv is touched
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: quickstart test lint notebook bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt neural-tangents==0.6.5 curvlinops-for-pytorch==3.0.1
	@touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/genlab run studies/quickstart.toml

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check genlab tests bench paper notebooks
	$(VENV)/bin/mypy

$(NB_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,notebook]'
	@mkdir -p $(LAB_SETTINGS)
	@echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}' \
		> $(LAB_SETTINGS)/overrides.json
	@touch $(NB_STAMP)

notebook: $(NB_STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
