# Every entry point of the project. Variables in CAPS can be overridden:
#   make train EPOCHS=10 QUANTIZE=float16
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every variable a user may set, with its default and help: variables.mk, the one list. A variable
# without a default there is passed on only when set, so the training job's own config
# (training/config.py) decides, and the template decides for the function: `make train EPOCHS=10`
# passes --epochs=10.
include variables.mk

# A variable on the command line that variables.mk does not list is a mistake (a misspelt
# `make train DATSET=x` would train the default dataset under the user's name): stop at once,
# naming it and the closest known one. Variables from the environment are not checked.
KNOWN_VARIABLES := $(shell sed -nE 's/^([A-Z][A-Z0-9_]*)[[:space:]]*\?=.*/\1/p' variables.mk)
COMMAND_LINE_VARIABLES := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
UNKNOWN_VARIABLES := $(filter-out $(KNOWN_VARIABLES),$(COMMAND_LINE_VARIABLES))
ifneq ($(UNKNOWN_VARIABLES),)
$(error $(or $(shell $(PYTHON) local/make_variables.py unknown $(UNKNOWN_VARIABLES)),unknown \
  variable(s) $(UNKNOWN_VARIABLES): `make help` lists the variables (variables.mk)))
endif

PY       := $(VENV)/bin/python
BIN      := $(VENV)/bin
SFN_DIR  := local/stepfunctions
# The functions' own environment on the Python Lambda runs them on (template.yaml: Runtime
# python3.13): LAMBDA_PYTHON (variables.mk) is pyenv's 3.13.0 where pyenv has it, else
# python3.13 on PATH.
LAMBDA_PYTHON := $(or $(LAMBDA_PYTHON),$(wildcard $(shell pyenv prefix 3.13.0 2>/dev/null)/bin/python3.13),$(shell command -v python3.13 2>/dev/null),python3.13)
# The tests that import only the functions (and mlcore, which they ship): they run on
# LAMBDA_PYTHON in FUNCTION_VENV; every other test runs in .venv.
LAMBDA_TESTS := tests/unit/function tests/unit/monitor tests/unit/mlcore

export SAM_CLI_TELEMETRY = 0
# SSE-KMS for everything the publisher writes (publish, and any pointer change)
ifneq ($(KMS_KEY),)
export MODEL_KMS_KEY_ARN := $(KMS_KEY)
endif

.PHONY: schemas
.PHONY: help setup setup-sagemaker lock lock-function lock-otel lock-checkov lock-iamlint lock-kserve lock-sagemaker test test-slow test-unit train train-sagemaker \
        convert report publish audit promote rollback status fixture validate build deploy smoke invoke batch \
        local-api s3-local demo events bench lint clean mutation docs docs-serve outputs publisher-credentials delete

help: ## list the targets, and the variables with their defaults (variables.mk)
	@$(PYTHON) local/make_variables.py help

setup: $(VENV)/.installed $(FUNCTION_VENV)/.installed $(OTEL_VENV)/.installed $(CHECKOV_VENV)/.installed $(IAMLINT_VENV)/.installed $(KSERVE_VENV)/.installed $(SFN_DIR)/node_modules/.installed chromium ## create .venv with every pinned dependency (training, tests, SAM CLI), .venv-function and .venv-otel (Python 3.13), .venv-checkov, .venv-iamlint, .venv-kserve, Node 22 with aws-local-stepfunctions, and chromium

# Debian's chromium, for the page's browser test (Playwright's Python API drives it; its own
# browser download is unreachable here): installed with apt where apt is available and it is
# missing (as root, or with sudo that needs no password). Otherwise a warning: the browser
# test then fails and says why (it skips only where there is no apt-get, outside CI).
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo -n)

.PHONY: chromium
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium (apt-get) for the browser test"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && exit 0; \
	fi; \
	echo "warning: no $(CHROMIUM) and it could not be installed (apt-get install chromium);" \
	     "the browser test (make test-slow) fails until it is there" >&2

# The batch state machine's local run (local/stepfunctions.py): Node 22 and aws-local-stepfunctions
# from npm, exactly as package-lock.json pins them (npm ci), in that folder's node_modules (the
# machine's own Node only runs npm: aws-local-stepfunctions needs 22, hence npm's engine warning,
# silenced). The `node` package's install script fetches its platform's Node binary from npm.
$(SFN_DIR)/node_modules/.installed: $(SFN_DIR)/package-lock.json $(SFN_DIR)/package.json
	@command -v npm >/dev/null || { echo "make setup: npm not found; install Node.js and npm" \
	  "(any version: it installs Node 22 for the local batch runs) and run make setup again" >&2; exit 2; }
	cd $(SFN_DIR) && npm ci --no-audit --no-fund --loglevel=error
	$(SFN_DIR)/node_modules/.bin/node --version
	touch $@

# Re-run only when the lock changes. pip is pinned too, so a fresh clone resolves the same way.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

# A tool's own pinned environment, for tools whose pins conflict with .venv's:
# $(call pinned_venv,VENV_DIR) in the recipe of VENV_DIR/.installed, its requirements file first.
define pinned_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check pip==25.3
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	$(1)/bin/python -m pip check
	touch $@
endef

# The functions' environment on Python 3.13 (requirements-function.in says what is in it).
$(FUNCTION_VENV)/.installed: requirements-function.txt layers/runtime/requirements.txt pyproject.toml
	@"$(LAMBDA_PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
	  echo "make setup: Python 3.13 (the functions' runtime on Lambda) not found as" \
	       "'$(LAMBDA_PYTHON)'. Install it with 'pyenv install 3.13.0' (or 'uv python install" \
	       "3.13', or your system's python3.13 package; docs/performance.md) and run make setup" \
	       "again, or point LAMBDA_PYTHON=/path/to/python3.13 at one." >&2; exit 2; }
	rm -rf $(FUNCTION_VENV) && "$(LAMBDA_PYTHON)" -m venv $(FUNCTION_VENV)
	$(FUNCTION_VENV)/bin/python -m pip install --quiet --disable-pip-version-check pip==25.3
	$(FUNCTION_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	$(FUNCTION_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(FUNCTION_VENV)/bin/python -m pip check
	touch $@

# AWS's distribution of OpenTelemetry on Python 3.13, for the bench's TracingMode otel row
$(OTEL_VENV)/.installed: requirements-otel.txt $(FUNCTION_VENV)/.installed
	rm -rf $(OTEL_VENV) && "$(LAMBDA_PYTHON)" -m venv $(OTEL_VENV)
	$(OTEL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check pip==25.3
	$(OTEL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	$(OTEL_VENV)/bin/python -m pip check
	touch $@

# checkov's own environment (its pins conflict with .venv's: boto3 1.35, packaging<24, networkx<2.7)
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(call pinned_venv,$(CHECKOV_VENV))

# the IAM linter's own environment (parliament; tests/unit/test_template_iam_lint.py runs it)
$(IAMLINT_VENV)/.installed: requirements-iamlint.txt
	$(call pinned_venv,$(IAMLINT_VENV))

# mutmut's own environment (requirements-mutmut.in says why), seeing .venv's packages behind its
# own through a .pth file (written after pip check, which would weigh aws-sam-cli's click pin
# against mutmut's click): the tests it runs import the project's packages from .venv.
$(MUTMUT_VENV)/.installed: requirements-mutmut.txt $(VENV)/.installed
	$(call pinned_venv,$(MUTMUT_VENV))
	echo "import site; site.addsitedir('$(abspath $(VENV))/lib/$(PYTHON)/site-packages')" \
	    > $(MUTMUT_VENV)/lib/$(PYTHON)/site-packages/project-venv.pth

# KServe's SDK, the v2 protocol tests' client (its protobuf pin conflicts with .venv's)
$(KSERVE_VENV)/.installed: requirements-kserve.txt
	$(call pinned_venv,$(KSERVE_VENV))

# The SageMaker SDK's own environment (not part of `make setup`: only `train-sagemaker` uses it).
setup-sagemaker: $(SM_VENV)/.installed ## the SageMaker Python SDK (v3) in its own .venv-sagemaker, for train-sagemaker

$(SM_VENV)/.installed: requirements-sagemaker.txt
	$(call pinned_venv,$(SM_VENV))

# $(call lock_requirements,NAME[,PIP_ARGS]): re-resolve NAME.in into NAME.txt in a throwaway venv
define lock_requirements
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip==25.3 && .lock-venv/bin/pip install --quiet -r $(1).in $(2)
	(echo "# Generated by 'make $@' from $(1).in (pip freeze of a clean venv). Do not edit by hand."; \
	 .lock-venv/bin/pip freeze) > $(1).txt
	rm -rf .lock-venv
endef

lock: ## re-resolve requirements.in into requirements.txt (in a throwaway venv)
	$(call lock_requirements,requirements)

lock-function: ## re-resolve requirements-function.in (Python 3.13) with requirements.txt's versions
	rm -rf .lock-venv && "$(LAMBDA_PYTHON)" -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip==25.3 && \
	  .lock-venv/bin/pip install --quiet -r requirements-function.in -c requirements.txt
	(echo "# Generated by 'make $@' from requirements-function.in (pip freeze of a clean Python 3.13"; \
	 echo "# venv, requirements.txt's versions as constraints). Do not edit by hand."; \
	 .lock-venv/bin/pip freeze) > requirements-function.txt
	rm -rf .lock-venv

lock-otel: ## re-resolve requirements-otel.in (Python 3.13) into requirements-otel.txt
	rm -rf .lock-otel && "$(LAMBDA_PYTHON)" -m venv .lock-otel
	.lock-otel/bin/pip install --quiet pip==25.3 && .lock-otel/bin/pip install --quiet -r requirements-otel.in
	(echo "# Generated by 'make $@' from requirements-otel.in (pip freeze of a clean Python 3.13 venv)."; \
	 echo "# Do not edit by hand."; .lock-otel/bin/pip freeze) > requirements-otel.txt
	rm -rf .lock-otel

lock-checkov: ## re-resolve requirements-checkov.in into requirements-checkov.txt
	$(call lock_requirements,requirements-checkov)

lock-iamlint: ## re-resolve requirements-iamlint.in into requirements-iamlint.txt
	$(call lock_requirements,requirements-iamlint)

lock-kserve: ## re-resolve requirements-kserve.in into requirements-kserve.txt
	$(call lock_requirements,requirements-kserve)

lock-sagemaker: ## re-resolve requirements-sagemaker.in into requirements-sagemaker.txt
	$(call lock_requirements,requirements-sagemaker)

# within requirements.txt's versions (the packages both environments hold stay the same), but
# click: mutmut's own is newer than aws-sam-cli's pin
lock-mutmut: ## re-resolve requirements-mutmut.in into requirements-mutmut.txt
	grep -v '^click==' requirements.txt > .lock-constraints.txt
	$(call lock_requirements,requirements-mutmut,-c .lock-constraints.txt)
	rm -f .lock-constraints.txt

# Two runs: the functions' tests on Python 3.13 (FUNCTION_VENV), everything else in .venv.
NOT_LAMBDA_TESTS = $(addprefix --ignore=,$(LAMBDA_TESTS))

test: setup ## the suite: the functions' tests on Python 3.13, then unit, integration (S3 on loopback, local API, sam build), template lint
	$(FUNCTION_VENV)/bin/python -m pytest -m "not slow" -n $(TEST_WORKERS) $(PYTEST_ARGS) $(LAMBDA_TESTS)
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(NOT_LAMBDA_TESTS) $(PYTEST_ARGS)

test-slow: setup ## the slow checks (bench smoke, browser, fuzzing, multi-process training); CI runs them
	$(FUNCTION_VENV)/bin/python -m pytest -m slow $(PYTEST_ARGS) $(LAMBDA_TESTS)
	$(PY) -m pytest -m slow $(NOT_LAMBDA_TESTS) $(PYTEST_ARGS)

test-unit: setup ## unit tests only (no network, no subprocess servers)
	$(FUNCTION_VENV)/bin/python -m pytest -m "not integration and not slow" $(PYTEST_ARGS) $(LAMBDA_TESTS)
	$(PY) -m pytest -m "not integration and not slow" $(NOT_LAMBDA_TESTS) $(PYTEST_ARGS)

# `--flag=value` for each variable that is set (the = form: INPUT_RANGE=-1,1 is not an option)
flags = $(foreach pair,$(1),$(if $($(word 2,$(subst =, ,$(pair)))),--$(word 1,$(subst =, ,$(pair)))=$($(word 2,$(subst =, ,$(pair))))))
ARTIFACT_FLAGS = $(call flags,name=NAME dataset=DATASET test-dataset=TEST_DATASET resize=RESIZE \
                              quantize=QUANTIZE artifacts=ARTIFACTS limit=LIMIT version=VERSION \
                              test-fraction=TEST_FRACTION max-accuracy-drop=MAX_ACCURACY_DROP \
                              min-accuracy=MIN_ACCURACY force=FORCE)
TRAIN_FLAGS = $(ARTIFACT_FLAGS) $(call flags,architecture=ARCH epochs=EPOCHS max-minutes=MAX_MINUTES \
                                      image-size=IMAGE_SIZE color=COLOR weights=WEIGHTS augment=AUGMENT \
                                      distribute=DISTRIBUTE)
CONVERT_FLAGS = $(ARTIFACT_FLAGS) $(call flags,model=MODEL input-range=INPUT_RANGE mean=MEAN std=STD)
REGISTRY_FLAGS = $(call flags,bucket=BUCKET prefix=PREFIX)

train: setup ## train, quantize, verify with LiteRT, gate -> artifacts/NAME/VERSION/ (exit 3: the gate refused the model)
	$(PY) -m training train $(TRAIN_FLAGS)

convert: setup ## quantize and verify your own Keras model: MODEL=... DATASET=... [INPUT_RANGE=lo,hi | MEAN=.. STD=..]
	$(PY) -m training convert $(CONVERT_FLAGS)

report: setup ## make report.html of the newest artifact (or VERSION=..., or ARTIFACT=folder) again
	$(PY) -m training report $(call flags,name=NAME artifacts=ARTIFACTS version=VERSION artifact=ARTIFACT)

publish: setup ## publish the newest artifact (or VERSION=..., ARTIFACT=folder or model.tar.gz, or MODEL=any.tflite [LABELS=labels.txt]) to s3://BUCKET/PREFIX/NAME/ [REPAIR_POINTER=1] [CANARY=10] [FORCE=1]
	$(PY) -m training publish $(call flags,name=NAME artifacts=ARTIFACTS version=VERSION \
	    artifact=ARTIFACT model=MODEL labels=LABELS lock-mode=LOCK_MODE lock-days=LOCK_DAYS \
	    signing-key=SIGNING_KEY signer-profile=SIGNER_PROFILE canary=CANARY force=FORCE) \
	    $(REGISTRY_FLAGS) $(if $(REPAIR_POINTER),--repair-pointer)

audit: setup ## the last pointer changes of NAME in s3://BUCKET/PREFIX (who, when, from, to) [LAST=10]
	$(PY) -m training audit $(call flags,name=NAME last=LAST) $(REGISTRY_FLAGS)

promote: setup ## serve VERSION=... to all requests and clear the canary (the pointer, conditional write)
	$(PY) -m training promote --version "$(VERSION)" $(call flags,name=NAME) $(REGISTRY_FLAGS) \
	    $(if $(REPAIR_POINTER),--repair-pointer)

rollback: setup ## clear the running canary, else serve the previous version again (nothing to undo: python -m training rollback exits 1, make 2)
	$(PY) -m training rollback $(call flags,name=NAME) $(REGISTRY_FLAGS) $(if $(REPAIR_POINTER),--repair-pointer)

status: setup ## the pointer: served version, canary and its share, history
	$(PY) -m training status $(call flags,name=NAME) $(REGISTRY_FLAGS)

train-sagemaker: $(SM_VENV)/.installed ## the training job on SageMaker: DATASET=s3://... [ROLE=arn... INSTANCES=2 DISTRIBUTE=multi-worker DRY_RUN=1]
	$(SM_VENV)/bin/python -m training.sagemaker_launch $(call flags,role=ROLE instances=INSTANCES \
	    instance-type=INSTANCE_TYPE output=OUTPUT) $(if $(DRY_RUN),--dry-run) $(TRAIN_FLAGS)

fixture: setup ## remake the committed test model tests/fixtures/mnist/ from the training job
	$(PY) -m training fixture --out tests/fixtures/mnist

# checkov: offline (--skip-download); its justified skips are in the template (Metadata.checkov)
# and docs/testing.md ("Template checks"). It scans template.yaml and what CloudFormation deploys
# from it for each parameter set of local/transformed.py (SAM's translator, offline), where SAM's
# generated resources and the resolved conditions are what checkov sees.
TRANSFORMED = .aws-sam/transformed
CHECKOV = $(CHECKOV_VENV)/bin/checkov --framework cloudformation --skip-download --compact --quiet

validate: setup ## sam validate --lint, cfn-lint, checkov on template.yaml and on its SAM-transformed forms
	$(BIN)/sam validate --lint --template template.yaml --region us-east-1
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV) --file template.yaml
	rm -rf $(TRANSFORMED) && $(PY) -m local.transformed --out $(TRANSFORMED) >/dev/null
	$(CHECKOV) --directory $(TRANSFORMED)

build: setup ## sam build (makefile build methods, cross-platform wheels: no Docker needed)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template template.yaml

deploy: build ## sam deploy with samconfig.toml's ENV=dev|prod settings [PARAMS="Key=Value ..."]
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m local.deploy --env $(ENV) --sam $(BIN)/sam $(PARAMS)

# The deployed stack of ENV (samconfig.toml names it), read with boto3: no aws CLI needed.
outputs: setup ## the ENV stack's outputs as shell exports (API_URL, BUCKET, API_KEY...): OUTPUTS=$(make -s outputs) && eval "$OUTPUTS"
	@$(PY) -m local.stack outputs --env $(ENV)

publisher-credentials: setup ## the ENV stack's PublisherRole credentials (1 hour): P=$(make -s publisher-credentials) && env $P make publish
	@$(PY) -m local.stack publisher-credentials --env $(ENV)

delete: setup ## delete the ENV stack (sam delete asks first); the registry, capture and audit buckets stay (docs/deploy.md)
	$(BIN)/sam delete --config-env $(ENV)

smoke: setup ## a short suite against any deployed or local API: URL=https://... [API_KEY=... | SIGV4=1] [CA=...]
	$(PY) -m examples.smoke --url "$(URL)" $(if $(API_KEY),--api-key "$(API_KEY)") $(if $(CA),--ca "$(CA)") \
	    $(if $(SIGV4),--sigv4)

# The template's parameters for the local runs, as sam's --parameter-overrides: NAME, BUCKET
# and PREFIX when set (BUCKET always is: without BucketName the template's bucket resolves
# locally to a logical id, not to a bucket), then PARAMS="Key=Value ...". The template's
# defaults apply to the rest.
LOCAL_PARAMS = $(strip $(if $(NAME),ModelName=$(NAME)) $(if $(BUCKET),BucketName=$(BUCKET)) \
                       $(if $(PREFIX),ModelPrefix=$(PREFIX)) $(PARAMS))
ENV_VARS_FLAG = $(if $(ENV_VARS),--env-vars $(ENV_VARS))

batch: setup ## batch inference over an S3 prefix through the batch state machine: NAME=... INPUT=s3://bucket/prefix/ OUTPUT=s3://bucket/prefix/ [VERSION=...]; locally (Docker-free, aws-local-stepfunctions) where AWS_ENDPOINT_URL_S3 is set, else on the ENV stack
	$(PY) -m local.batch --input "$(INPUT)" --output "$(OUTPUT)" $(call flags,name=NAME version=VERSION) \
	    --env $(ENV) --parameter-overrides $(LOCAL_PARAMS)

invoke: setup ## one event through FUNCTION: sam local invoke where Docker runs, else the Docker-free runner
	$(PY) -m local.invoke --event $(EVENT) $(if $(FUNCTION),--function $(FUNCTION)) \
	    $(ENV_VARS_FLAG) --parameter-overrides $(LOCAL_PARAMS)

# local-api serves several models (ModelNames): NAME=a,b those (a is the default, /predict's),
# without NAME every model under the prefix ("*"; the template's ModelName stays the default).
comma := ,
API_PARAMS = $(strip $(if $(NAME),ModelName=$(firstword $(subst $(comma), ,$(NAME))) \
                     ModelNames=$(NAME),'ModelNames=*') $(if $(BUCKET),BucketName=$(BUCKET)) \
                     $(if $(PREFIX),ModelPrefix=$(PREFIX)) $(PARAMS))

local-api: setup ## the template's API on https://127.0.0.1:API_PORT (Docker-free): every model under the prefix, or NAME=a,b
	$(PY) -m local.api --port $(API_PORT) $(if $(API_KEY),--api-key $(API_KEY)) $(ENV_VARS_FLAG) \
	    --parameter-overrides $(API_PARAMS)

s3-local: setup ## a real S3-protocol server on 127.0.0.1:S3_PORT with the bucket created
	$(PY) -m local.s3 --port $(S3_PORT) --bucket $(BUCKET)

demo: setup ## the whole loop offline: S3, train (or reuse), publish, local API, requests (SERVE=1: keep the page up; RETRAIN=1)
	$(PY) -m local.demo $(call flags,name=NAME dataset=DATASET epochs=EPOCHS artifacts=ARTIFACTS \
	    limit=LIMIT api-key=API_KEY) $(REGISTRY_FLAGS) --s3-port $(S3_PORT) --api-port $(API_PORT) \
	    $(if $(SERVE),--serve) $(if $(RETRAIN),--retrain) $(if $(PARAMS),--parameter-overrides $(PARAMS))

schemas: setup ## compile the registry documents' JSON Schemas (mlcore/schemas/) into their validators (mlcore/*_schema.py)
	$(PY) -m local.make_schemas

events: setup ## remake events/ and the OpenAPI document; NAME=... (or ARTIFACT=...): that model's events
ifneq ($(NAME)$(ARTIFACT),)
	$(PY) events/make_events.py --model $(call flags,name=NAME artifacts=ARTIFACTS version=VERSION \
	    artifact=ARTIFACT)
else
	$(PY) events/make_events.py
	$(PY) events/make_openapi.py
endif

# Not in .ci/run (it takes long): run it after changing mlcore/, router.py or canary.py or their tests.
mutation: setup $(MUTMUT_VENV)/.installed ## mutmut over mlcore/, router.py, canary.py with their unit tests -> mutation/SUMMARY.md (nice'd)
	nice -n 10 $(MUTMUT_VENV)/bin/python -m mutation

bench: setup ## benchmarks side by side -> bench/results.json and a markdown table
	$(PY) -m bench

.PHONY: bench-smoke
bench-smoke: setup ## a few runs of every benchmark (checks that it runs; figures mean nothing)
	$(PY) -m bench --quick --out .local/bench-quick.json

# The documentation site (docs/, mkdocs.yml). The Material theme prints its end-of-life notice
# on every build; docs/index.md ("About this site") records the choice, so it is silenced here.
MKDOCS = NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

docs: setup ## build the documentation site strictly (a broken link or a page missing from the nav fails) -> .local/site/
	$(MKDOCS) build --strict

docs-serve: setup ## serve the documentation site on http://127.0.0.1:DOCS_PORT, rebuilt as pages change
	$(MKDOCS) serve --strict --dev-addr 127.0.0.1:$(DOCS_PORT)

lint: setup ## ruff: lint and the one code style (ruff format --check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean: ## remove build output and caches (keeps .venv and artifacts/)
	rm -rf .aws-sam .pytest_cache .ruff_cache .mutation
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
