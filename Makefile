# The two commands a user needs (see README):
#   make quickstart   set up .venv if needed, then run the main job
#   make test         set up .venv if needed, then run the test suite
# Both are idempotent: the environment is rebuilt only when pyproject.toml or
# constraints.txt change, so a second call starts at once.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.genlab-installed
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: quickstart test bench clean-venv

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

bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
