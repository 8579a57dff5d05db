# Every target sets itself up: a fresh clone needs only `make test` or `make demo`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTHON  ?= $(shell sh scripts/find-python.sh)
STAGE   ?= dev

.PHONY: setup test lint demo bench clean deploy teardown local package

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

# checkov, the IaC scanner of `make lint` (offline: --skip-download, no API key), pins boto3 below the
# project's, so it gets a venv of its own inside .venv; uv installs it in seconds, pip otherwise.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV    := $(VENV)/checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP): | $(STAMP)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check uv 2>/dev/null && \
	  $(CHECKOV_VENV)/bin/python -m uv pip install -q --python $(CHECKOV_VENV)/bin/python checkov==$(CHECKOV_VERSION) || \
	  $(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	@touch $@

lint: setup $(CHECKOV_STAMP)
	$(VENV)/bin/ruff check app.py chalicelib mcd_tools tests scripts
	$(VENV)/bin/lint-imports
	$(VENV)/bin/cfn-lint --include-checks I --regions us-east-1 eu-west-1 eu-central-1 -- infra/stack.yaml infra/region.yaml
	$(CHECKOV_VENV)/bin/checkov --directory infra --framework cloudformation --skip-download --quiet --compact

test: setup lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

demo: setup
	$(PY) -m mcd_tools.demo

# chalice local on an embedded AWS, CloudTrail from examples/ and a Slack stand-in (docs/deployment.md). PORT=8000
local: setup
	$(VENV)/bin/chalice local --stage local --no-autoreload --port $(or $(PORT),8000)

bench: setup
	$(PY) -m mcd_tools.bench

# docs/deployment.md. Extra options go in ARGS, e.g. ARGS=--yes or ARGS=--config-topic-arn=arn:aws:sns:...
deploy: setup
	$(PY) scripts/deploy.py deploy --stage $(STAGE) $(ARGS)

teardown: setup
	$(PY) scripts/deploy.py teardown --stage $(STAGE) $(ARGS)

# docs/deployment.md, "Packaging": out/package-$(STAGE)/sam.json, or FORMAT=terraform for out/package-$(STAGE)-terraform/.
# An existing Config topic: ARGS=--config-topic-arn=arn:aws:sns:...
package: setup
	$(PY) -m mcd_tools.package --stage $(STAGE) --format $(or $(FORMAT),sam) $(ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
