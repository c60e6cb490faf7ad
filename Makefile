# Threadline. `make demo` and `make test` set up everything they need from a bare machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS := .tools
VENV := .venv
PY := $(VENV)/bin/python
UV := $(TOOLS)/bin/uv
SAM := $(TOOLS)/bin/sam
ASL_VALIDATOR := $(TOOLS)/node_modules/.bin/asl-validator
# The local stack's IAM evaluator (local/aws/iam/simulator.cjs).
IAM_SIMULATE := $(TOOLS)/node_modules/@cloud-copilot/iam-simulate/package.json
CHECKOV := $(TOOLS)/bin/checkov
BANDIT := $(TOOLS)/bin/bandit
MKDOCS := $(TOOLS)/bin/mkdocs
UV_VERSION := 0.13.9
SAM_CLI_VERSION := 1.170.0
ASL_VALIDATOR_VERSION := 4.0.0
CHECKOV_VERSION := 3.3.30
BANDIT_VERSION := 1.9.4
IAM_SIMULATE_VERSION := 0.1.173
MKDOCS_VERSION := 1.6.1
MKDOCS_MATERIAL_VERSION := 9.8.2
PYMDOWN_EXTENSIONS_VERSION := 13.1.2
# SAM validates offline when it has a region and no credentials lookup is needed.
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
# mkdocs-material prints a banner about its successor on every build; the pin is deliberate.
export NO_MKDOCS_2_WARNING := 1
# The local stack imports the layer's package the way Lambda does: from the layer's path.
export PYTHONPATH := layers/threadline:.
LAYER_REQUIREMENTS := layers/threadline/requirements.txt
NON_LAYER_PACKAGES := boto3 botocore s3transfer

.PHONY: help dev test coverage unit integration lint format build deploy demo serve events token bench chaos iam rehearse requirements openapi fire docs docs-serve docs-pages screenshots clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

# The SAM CLI and the scanners pin their own dependencies, so each has its own environment.
TOOL_INSTALL := UV_TOOL_DIR=$(TOOLS)/uv-tools UV_TOOL_BIN_DIR=$(TOOLS)/bin $(UV) tool install --quiet
$(SAM): $(UV)
	$(TOOL_INSTALL) aws-sam-cli==$(SAM_CLI_VERSION)

$(CHECKOV): $(UV)
	$(TOOL_INSTALL) checkov==$(CHECKOV_VERSION)

$(BANDIT): $(UV)
	$(TOOL_INSTALL) bandit==$(BANDIT_VERSION)

# The docs site's tools get their own environment too: the app's lock pins what the layer ships.
$(MKDOCS): $(UV)
	$(TOOL_INSTALL) mkdocs==$(MKDOCS_VERSION) --with mkdocs-material==$(MKDOCS_MATERIAL_VERSION) \
		--with pymdown-extensions==$(PYMDOWN_EXTENSIONS_VERSION)

$(ASL_VALIDATOR):
	npm install --prefix $(TOOLS) --no-audit --no-fund --silent asl-validator@$(ASL_VALIDATOR_VERSION)

$(IAM_SIMULATE): $(ASL_VALIDATOR)
	npm install --prefix $(TOOLS) --no-audit --no-fund --silent @cloud-copilot/iam-simulate@$(IAM_SIMULATE_VERSION)

dev: $(VENV)/.synced $(SAM) $(ASL_VALIDATOR) $(IAM_SIMULATE) $(CHECKOV) $(BANDIT) $(MKDOCS) ## Set up the virtualenv and tools

# The console's browser test drives Debian's Chromium through its ChromeDriver.
CHROMEDRIVER := /usr/bin/chromedriver
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMEDRIVER):
	$(AS_ROOT) apt-get update -q
	$(AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver

test: dev $(CHROMEDRIVER) ## Run every test (unit, integration, template, end-to-end, browser)
	$(PY) -m pytest -n 2 -q

# Python 3.11 has no sys.monitoring, so tracing costs make test about 25% (over its 4 minutes).
coverage: dev $(CHROMEDRIVER) ## Run every test and print the coverage of the layer's package and handlers
	$(PY) -m pytest -n 2 -q --cov --cov-report=term

unit: $(VENV)/.synced ## Unit tests only (no moto, no local OpenAI server)
	$(PY) -m pytest -q tests/unit

lint: dev ## ruff, mypy, cfn-lint, sam validate --lint, asl-validator, checkov, bandit, the docs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml
	@# The definitions as deployed to the aws partition (service ARNs name ${Partition}).
	@mkdir -p .local/asl && for definition in statemachine/*.asl.json; do \
		sed 's/$${Partition}/aws/g' $$definition > .local/asl/$$(basename $$definition); done
	$(ASL_VALIDATOR) --no-arn-check --json-path .local/asl/run.asl.json --json-path .local/asl/run_express.asl.json
	$(CHECKOV) --config-file .checkov.yaml --quiet --compact --skip-download --framework cloudformation --file template.yaml
	$(BANDIT) --quiet --recursive functions layers/threadline/threadline assistants local
	@# Sentences a reader takes in at once: at most 40 words and one semicolon.
	$(PY) -m docs.prose README.md docs
	@# A broken link, anchor, snippet or page fails the build.
	$(PY) -m docs.generate
	$(MKDOCS) build --strict --quiet

# The generated parts of the docs (.local/docs): the parameters, the state machines, the API
# and the bench's table, each from its source, so none can go stale.
docs-pages: $(VENV)/.synced
	$(PY) -m docs.generate

docs: dev docs-pages ## Build the docs site into .local/site (offline, no warnings allowed)
	$(MKDOCS) build --strict

docs-serve: dev docs-pages ## Serve the docs on http://127.0.0.1:$${DOCS_PORT:-8000}, rebuilt as pages change
	$(MKDOCS) serve --strict --dev-addr 127.0.0.1:$${DOCS_PORT:-8000}

# The browser test writes the console's screenshots to .local; the docs show copies of them,
# copied here for a person to look at and commit (a test run never rewrites committed files).
screenshots: dev $(CHROMEDRIVER) ## Take the console's screenshots and copy them into docs/images
	$(PY) -m pytest -q -p no:randomly tests/e2e/test_console.py
	mkdir -p docs/images && cp .local/console-*.png docs/images/

format: $(VENV)/.synced ## Fix lint and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

requirements: $(UV) ## Regenerate the layer's requirements from uv.lock
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --no-header --no-annotate \
		$(addprefix --no-emit-package ,$(NON_LAYER_PACKAGES)) -o $(LAYER_REQUIREMENTS) --quiet

openapi: $(VENV)/.synced ## Regenerate docs/openapi.json from the API's models
	$(PY) -m local.openapi

# sam build wants a python3.13 for the python3.13 functions; pyenv provides one if installed.
PYENV_313 := $(shell command -v pyenv >/dev/null && pyenv versions --bare | grep -m1 '^3\.13')
build: $(SAM) ## sam build (no Docker needed: the layer cross-installs arm64 wheels)
	PYENV_VERSION=$(if $(PYENV_313),$(PYENV_313):$$(pyenv version-name 2>/dev/null),$$PYENV_VERSION) \
		$(SAM) build --template template.yaml

deploy: build ## sam deploy (needs AWS credentials; CONFIG_ENV=prod for production)
	$(SAM) deploy --config-env $${CONFIG_ENV:-default}

demo: dev ## Run the whole product locally and tell its story
	$(PY) -m local.demo

serve: dev ## Run the local stack on 127.0.0.1:$${PORT:-3000}
	$(PY) -m local.serve --port $${PORT:-3000}

events: ## Follow the events `make serve` publishes (.local/events.jsonl)
	@mkdir -p .local && touch .local/events.jsonl && tail -n 20 -f .local/events.jsonl

token: $(VENV)/.synced ## Print a local API token: make token USER=alice
	@$(PY) -m local.tokens $${USER:-alice}

fire: $(VENV)/.synced ## Fire a schedule on `make serve`: make fire FUNCTION=CleanupFunction [INPUT='{...}']
	$(PY) -m local.aws.fire $(FUNCTION) $(if $(EVENT),--event $(EVENT)) $(if $(INPUT),--input '$(INPUT)')

bench: dev ## Run the benchmarks; writes bench/results/latest.json
	$(PY) -m bench

rehearse: dev ## Rehearse a deploy without AWS: every configuration transformed, linted and provisioned under CloudFormation's checks, then the demo
	$(PY) -m local.rehearse
	$(PY) -m local.demo

iam: dev ## Run the tests that drive the stack and print each role's grants it never used
	rm -rf .local/iam
	THREADLINE_IAM_USAGE=.local/iam $(PY) -m pytest -n 2 -q tests/integration tests/e2e
	$(PY) -m local.aws.iam.report .local/iam

chaos: dev ## Runs under injected OpenAI faults, then the reliability invariants checked
	$(PY) -m local.chaos $(CHAOS_ARGS)

clean: ## Remove build output and tools
	rm -rf .aws-sam $(TOOLS) $(VENV) .pytest_cache
