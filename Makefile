# Every target sets itself up: a fresh clone needs only `make test` or `make demo`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTHON  ?= $(shell sh scripts/find-python.sh)
STAGE   ?= dev

.PHONY: setup test lint demo bench clean deploy teardown

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv installs the same requirements in seconds; plain pip is the fallback wherever uv is unavailable.
	@if $(PY) -m pip install -q --disable-pip-version-check uv 2>/dev/null && \
	    $(PY) -m uv pip install -q --python $(PY) -r requirements-dev.txt && \
	    $(PY) -m uv pip install -q --python $(PY) --no-deps -e . ; then :; \
	else \
	  echo "uv unavailable: installing with pip"; \
	  $(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt && \
	  $(PY) -m pip install -q --disable-pip-version-check --no-deps -e . ; \
	fi
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check app.py chalicelib mcd_tools tests scripts
	$(VENV)/bin/lint-imports
	$(VENV)/bin/cfn-lint --include-checks I --regions us-east-1 eu-west-1 eu-central-1 -- infra/stack.yaml

test: setup lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

demo: setup
	$(PY) -m mcd_tools.demo

bench: setup
	$(PY) -m mcd_tools.bench

# docs/deployment.md. Extra options go in ARGS, e.g. ARGS=--yes or ARGS=--config-topic-arn=arn:aws:sns:...
deploy: setup
	$(PY) scripts/deploy.py deploy --stage $(STAGE) $(ARGS)

teardown: setup
	$(PY) scripts/deploy.py teardown --stage $(STAGE) $(ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
