# lossd: `make run` starts the service, `make test` runs every check. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEPS := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Two stamps: serving needs lossd and its runtime dependencies only (`make run`, ~150 MB);
# checks add the dev and conformance extras (`make test`, ~1 GB: Keras, JAX, mypy, SDK tools).
RUN_STAMP := $(VENV)/.run-$(DEPS)
DEV_STAMP := $(VENV)/.dev-$(DEPS)
# The Python client (clients/python) is tested in a venv of its own, holding lossd-client with its
# dask and test extras and nothing of the server's: that proves it installs alone. Rebuilt from
# scratch whenever its pyproject changes.
CLIENT_VENV ?= build/client-venv
CLIENT_DEPS := $(shell cat clients/python/pyproject.toml | cksum | cut -d' ' -f1)
CLIENT_STAMP := $(CLIENT_VENV)/.client-$(CLIENT_DEPS)

.PHONY: help run test lint typecheck fmt pytest openapi sdk bench loadtest clean container-test

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

# A venv made by another Python than $(PYTHON) (another version, or gone) is rebuilt rather than
# reused. flock: two `make` runs in one tree (an editor's and a terminal's, say) must not
# pip-install into the same venv at once.
$(RUN_STAMP): pyproject.toml
	flock .venv.lock sh -c '\
	  test -f $@ && exit 0; \
	  want=$$($(PYTHON) -c "import sys; print(sys.version_info[:2])"); \
	  have=$$($(BIN)/python -c "import sys; print(sys.version_info[:2])" 2>/dev/null || true); \
	  if [ "$$have" != "$$want" ]; then \
	    test -z "$$have" || echo "$(VENV) was made by Python $$have, not $$want: rebuilding it"; \
	    rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
	  fi; \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -e . && \
	  rm -f $(VENV)/.run-* && touch $@'

$(DEV_STAMP): $(RUN_STAMP)
	flock .venv.lock sh -c '\
	  test -f $@ && exit 0; \
	  $(BIN)/python -m pip install --quiet -e ".[dev,conformance]" && \
	  rm -f $(VENV)/.dev-* && touch $@'

$(CLIENT_STAMP): clients/python/pyproject.toml
	flock .venv.lock sh -c '\
	  test -f $@ && exit 0; \
	  rm -rf $(CLIENT_VENV) && $(PYTHON) -m venv $(CLIENT_VENV) && \
	  $(CLIENT_VENV)/bin/python -m pip install --quiet --upgrade pip && \
	  $(CLIENT_VENV)/bin/python -m pip install --quiet -e "./clients/python[dask,test]" && \
	  touch $@'

venv: $(DEV_STAMP)

run: $(RUN_STAMP)  ## set up (serving dependencies only) and start the service on HOST:PORT, 127.0.0.1:8000
	LOSSD_HOST=$(HOST) LOSSD_PORT=$(PORT) $(BIN)/lossd serve

test: lint typecheck pytest  ## set up and pass every check

lint: $(DEV_STAMP)
	$(BIN)/ruff check app tests bench clients/python
	$(BIN)/ruff format --check app tests bench clients/python

typecheck: $(DEV_STAMP) $(CLIENT_STAMP)
	$(BIN)/mypy
	cd clients/python && $(abspath $(CLIENT_VENV))/bin/mypy

# The client's tests run in its own venv against `lossd serve` processes they start with the
# project's Python (LOSSD_SERVER_PYTHON); CLIENT_PYTEST_ARGS narrows them as PYTEST_ARGS does.
pytest: $(DEV_STAMP) $(CLIENT_STAMP)
	KERAS_BACKEND=numpy $(BIN)/python -m pytest $(PYTEST_ARGS)
	cd clients/python && LOSSD_SERVER_PYTHON=$(abspath $(BIN))/python \
	  $(abspath $(CLIENT_VENV))/bin/python -m pytest -p no:cacheprovider $(CLIENT_PYTEST_ARGS)

fmt: $(DEV_STAMP)
	$(BIN)/ruff format app tests bench clients/python
	$(BIN)/ruff check --fix app tests bench clients/python

openapi: $(DEV_STAMP)  ## export the OpenAPI contract the SDKs are generated from
	$(BIN)/python -m app.api.openapi_export > openapi/openapi.json

sdk: $(DEV_STAMP)  ## generate the TypeScript and Python clients into build/sdk (docs/sdks.md)
	$(BIN)/openapi-generator-cli generate -g typescript-fetch -i openapi/openapi.json -o build/sdk/typescript
	$(BIN)/openapi-python-client generate --meta none --overwrite --path openapi/openapi.json --output-path build/sdk/python/lossd_sdk

bench: $(DEV_STAMP)  ## every benchmark with ratios and PASS/FAIL; writes bench/RESULTS.md (BENCH_ARGS=--quick: smoke run)
	KERAS_BACKEND=numpy $(BIN)/python -m bench $(BENCH_ARGS)

loadtest: $(DEV_STAMP)  ## 60 s of mixed wrk traffic against lossd serve --workers 2; figures to bench/RESULTS.md
	KERAS_BACKEND=numpy $(BIN)/python -m bench.loadtest

container-test:  ## build the Docker image with buildah and check it serves (root; see docs/container.md)
	bash .ci/container-test.sh

clean:  ## remove the venv and every cache (the next make sets up afresh)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
