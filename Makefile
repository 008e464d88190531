# fashion-softmax: `make help` lists the targets. Each installs into .venv on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TRAIN_ARGS ?=
TIME_SCALE ?= 1

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,serve,dev]'
	touch $@

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: install
install: $(STAMP) ## create .venv and install the project with its train, serve and dev extras

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
bench-train: $(STAMP) ## our loop vs the book's DataLoader loop, 10 epochs, side by side
	$(BIN)/python -m bench.bench_train

.PHONY: bench-serve
bench-serve: $(STAMP) ## load test (wrk) of the service and of the naive Flask+torch baseline, side by side
	@test -f artifacts/model.json || $(MAKE) train-export
	$(BIN)/python -m bench.bench_serve

.PHONY: bench-peers
bench-peers: $(STAMP) ## ours beside MLServer, KServe, LitServe, BentoML, PyTriton on model.onnx (BENCH_PEERS_ARGS=--quick)
	@test -f artifacts/model.json || $(MAKE) train-export
	$(BIN)/python -m bench.bench_peers $(BENCH_PEERS_ARGS)

.PHONY: bench-versions
bench-versions: $(STAMP) ## memory per extra model version a worker serves (FASHION_SOFTMAX_VERSION_POLICY)
	@test -f artifacts/model.json || $(MAKE) train-export
	$(BIN)/python -m bench.version_memory

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

.PHONY: up
up: ## docker compose: train once, then serve on 127.0.0.1:8000 (GPU=1 trains on an NVIDIA GPU)
	$(COMPOSE_GPU) docker compose up -d --build --wait

.PHONY: down
down: ## docker compose: stop and remove the stack (volumes are kept; `docker compose down -v` drops them)
	docker compose down

.PHONY: compose-test
compose-test: $(STAMP) ## build and run the whole stack for real, check it over HTTP, tear it down (CI)
	docker/compose_test.sh
