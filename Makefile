# lossd: `make run` starts the service, `make test` runs every check. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck fmt pytest openapi sdk bench loadtest clean container-test

# flock: two `make` runs in one tree (an editor's and a terminal's, say) must not pip-install
# into the same venv at once.
$(STAMP): pyproject.toml
	flock .venv.lock sh -c '\
	  test -f $@ && exit 0; \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -e ".[dev,conformance]" && \
	  rm -f $(VENV)/.installed-* && touch $@'

venv: $(STAMP)

run: $(STAMP)  ## set up and start the service on $(HOST):$(PORT)
	LOSSD_HOST=$(HOST) LOSSD_PORT=$(PORT) $(BIN)/lossd serve

test: lint typecheck pytest  ## set up and pass every check

lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	KERAS_BACKEND=numpy $(BIN)/python -m pytest $(PYTEST_ARGS)

fmt: $(STAMP)
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

openapi: $(STAMP)  ## export the OpenAPI contract the SDKs are generated from
	$(BIN)/python -m app.api.openapi_export > openapi/openapi.json

sdk: $(STAMP)  ## generate the TypeScript and Python clients into build/sdk (README: SDKs)
	$(BIN)/openapi-generator-cli generate -g typescript-fetch -i openapi/openapi.json -o build/sdk/typescript
	$(BIN)/openapi-python-client generate --meta none --overwrite --path openapi/openapi.json --output-path build/sdk/python/lossd_client

bench: $(STAMP)  ## every benchmark with ratios and PASS/FAIL; writes bench/RESULTS.md (BENCH_ARGS=--quick: smoke run)
	KERAS_BACKEND=numpy $(BIN)/python -m bench $(BENCH_ARGS)

loadtest: $(STAMP)  ## 60 s of mixed wrk traffic against lossd serve --workers 2; figures to bench/RESULTS.md
	KERAS_BACKEND=numpy $(BIN)/python -m bench.loadtest

container-test:  ## build the Docker image with buildah and check it serves (root; see docs/container.md)
	bash .ci/container-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
