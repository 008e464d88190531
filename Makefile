# fashion-softmax: `make help` lists the targets. Each installs into .venv on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TRAIN_ARGS ?=
TIME_SCALE ?= 1

# Installs come from the lock files only: every version pinned, every file checked against its hash.
$(STAMP): pyproject.toml requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: install
install: $(STAMP) ## create .venv and install the project with every extra, from requirements/dev.txt (hashes checked)

# make lock: one resolution of every extra of pyproject.toml (requirements/dev.txt, what make install and CI use),
# then each image's environment as a subset of it, at the same versions. For Python 3.11 (the images') and up, on
# every platform. The constraint file pip is configured with here, if any, bounds it too (CI's machines cap torch).
LOCK_CONSTRAINTS := $(shell $(BIN)/pip config list 2>/dev/null | sed -nE "s/^(global|:env:)\.constraint='(.*)'$$/\2/p")
LOCK := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(if $(LOCK_CONSTRAINTS),--constraint $(LOCK_CONSTRAINTS))

.PHONY: lock
lock: $(STAMP) ## update requirements/*.txt from pyproject.toml (newest versions allowed), then `make install`
	$(LOCK) pyproject.toml --all-extras --upgrade -o requirements/dev.txt
	$(LOCK) pyproject.toml --extra serve --upgrade --constraint requirements/dev.txt -o requirements/serve.txt
	$(LOCK) pyproject.toml --extra train --upgrade --constraint requirements/dev.txt -o requirements/train.txt
	$(LOCK) pyproject.toml --extra sbom --upgrade --constraint requirements/dev.txt -o requirements/sbom.txt

.PHONY: train-export
train-export: $(STAMP) ## train (book's settings; TRAIN_ARGS="--recipe best" etc.), export and verify artifacts/
	$(BIN)/python -m training $(TRAIN_ARGS)

.PHONY: rollback
rollback: $(STAMP) ## make model repository version VERSION=N current again (checked first; a running server reloads it)
	@test -n "$(VERSION)" || { echo "make rollback: name the version: make rollback VERSION=N" >&2; exit 2; }
	$(BIN)/python -m training.rollback $(VERSION)

.PHONY: test
test: $(STAMP) ## run the tests (what .ci/run calls)
	$(BIN)/pytest

.PHONY: serve
serve: $(STAMP) ## serve artifacts/ with Granian on 127.0.0.1:8000 (FASHION_SOFTMAX_HOST/_PORT/_WORKERS/_MODEL_DIR)
	$(BIN)/python -m serving

.PHONY: bench
bench: bench-train bench-serve bench-versions ## run every benchmark (reports in bench/results/)

.PHONY: bench-train
bench-train: $(STAMP) ## our loop vs the book's DataLoader loop, 10 epochs, side by side (BENCH_TRAIN_ARGS=--repeats 1)
	$(BIN)/python -m bench.bench_train $(BENCH_TRAIN_ARGS)

.PHONY: bench-serve
bench-serve: $(STAMP) ## load test (wrk) of the service and of the naive Flask+torch baseline, side by side
	@test -f artifacts/model.json || $(MAKE) train-export
	$(BIN)/python -m bench.bench_serve

.PHONY: bench-peers
bench-peers: $(STAMP) ## ours beside MLServer, KServe, LitServe, BentoML, PyTriton, bare Flask on model.onnx (BENCH_PEERS_ARGS=--quick)
	@test -f artifacts/model.json || $(MAKE) train-export
	$(BIN)/python -m bench.bench_peers $(BENCH_PEERS_ARGS)

.PHONY: bench-versions
bench-versions: $(STAMP) ## memory per extra model version a worker serves, and a rollback under 64 clients' load
	@test -f artifacts/model.json || $(MAKE) train-export
	$(BIN)/python -m bench.version_memory
	$(BIN)/python -m bench.rollback_load

.PHONY: reliability
reliability: $(STAMP) ## the server (2 workers) under fuzzing, load, 100k requests, a killed worker, slow clients (TIME_SCALE=0.5: half the time)
	@test -f artifacts/model.json || $(MAKE) train-export
	$(BIN)/python -m bench.reliability --time-scale $(TIME_SCALE)

.PHONY: lint
lint: $(STAMP) ## ruff, hadolint on the Dockerfiles, docker compose config
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint --failure-threshold error docker/*.Dockerfile
	docker compose config -q

COMPOSE_GPU := $(if $(GPU),COMPOSE_FILE=docker-compose.yml:docker/compose.gpu.yml)
TOKENS_FILE := secrets/api/tokens
# the token alone: what Prometheus (--profile monitoring) sends with each scrape
PROMETHEUS_TOKEN := secrets/prometheus/token
API_URL = https://localhost:$${API_PORT:-8000}

.PHONY: certs
certs: ## the proxy's TLS for development: a local CA and a server certificate in secrets/tls (CERT_NAMES="host...")
	@sh docker/proxy/certs.sh secrets/tls

.PHONY: token
token: ## a new API token for the compose stack (NAME=user): printed once, only its hash kept in secrets/api/tokens
	@$(PYTHON) serving/tokens.py add $(or $(NAME),user) --file $(TOKENS_FILE)

.PHONY: up
up: certs ## docker compose: train once, then serve on https://127.0.0.1:8000 with a token (GPU=1: train on a GPU)
	@if ! $(PYTHON) serving/tokens.py list --file $(TOKENS_FILE) 2>/dev/null | grep -q .; then \
	  token=$$($(PYTHON) serving/tokens.py add user --file $(TOKENS_FILE) 2>/dev/null) || exit 1; \
	  echo "up: your API token, shown only now (only its SHA-256 is kept, in $(TOKENS_FILE)):"; \
	  echo; echo "    export FASHION_SOFTMAX_TOKEN=$$token"; echo; \
	  echo "up: send it as a Bearer token, over https checked against secrets/tls/ca.crt:"; \
	  echo "    curl --cacert secrets/tls/ca.crt -H \"Authorization: Bearer \$$FASHION_SOFTMAX_TOKEN\" $(API_URL)/metadata"; \
	  echo "up: more tokens: make token NAME=...; revoke one: $(PYTHON) serving/tokens.py remove NAME"; \
	fi
	@if [ ! -s $(PROMETHEUS_TOKEN) ]; then \
	  mkdir -p $(dir $(PROMETHEUS_TOKEN)) && $(PYTHON) serving/tokens.py remove prometheus --file $(TOKENS_FILE) 2>/dev/null; \
	  $(PYTHON) serving/tokens.py add prometheus --file $(TOKENS_FILE) 2>/dev/null > $(PROMETHEUS_TOKEN) || exit 1; \
	  chmod 0644 $(PROMETHEUS_TOKEN); \
	fi
	PROMETHEUS_API_TOKEN_FILE=$${PROMETHEUS_API_TOKEN_FILE:-$(PROMETHEUS_TOKEN)} $(COMPOSE_GPU) docker compose up -d --build --wait

.PHONY: down
down: ## docker compose: stop and remove the stack (volumes are kept; `docker compose down -v` drops them)
	docker compose down

.PHONY: compose-test
compose-test: $(STAMP) ## build and run the whole stack for real, check it over HTTP, tear it down (CI)
	docker/compose_test.sh
