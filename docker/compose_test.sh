#!/usr/bin/env bash
# make compose-test: build and start the whole stack for real, check it from outside, tear it down.
# Needs a Docker engine with Compose v2 (../shared/tools/docker-up.sh provides one offline) and
# Debian's dataset-fashion-mnist on the host: the training container gets it read-only, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

export COMPOSE_PROJECT_NAME=fashion-softmax-test
export COMPOSE_FILE=docker-compose.yml:docker/compose.offline-data.yml
API_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export API_PORT
workdir=$(mktemp -d)

cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then docker compose logs --no-color --tail 50 || true; fi
  docker compose down -v --remove-orphans || true
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT

docker compose config -q
echo "compose-test: ok: docker compose config"
started=$(date +%s)
docker compose up -d --build --wait --wait-timeout 900
echo "compose-test: ok: up --wait in $(( $(date +%s) - started )) s; api on 127.0.0.1:$API_PORT"

[ "$(docker compose ps --status exited --format '{{.Service}}' train)" = train ] || { echo "train did not exit"; exit 1; }
[ "$(docker inspect --format '{{.State.Health.Status}}' "$(docker compose ps -q api)")" = healthy ]
echo "compose-test: ok: train completed, api healthy"
[ "$(docker compose exec -T api id -u)" != 0 ] && echo "compose-test: ok: api runs as a non-root user"
if docker compose exec -T api touch /artifacts/probe 2>/dev/null; then
  echo "compose-test: FAILED: artifacts are writable from the api"; exit 1
fi
echo "compose-test: ok: artifacts are mounted read-only"
if docker compose exec -T api python -c 'import torch' 2>/dev/null; then
  echo "compose-test: FAILED: torch is importable in the serving image"; exit 1
fi
echo "compose-test: ok: no torch in the serving image"

docker compose cp api:/artifacts/model.onnx "$workdir/model.onnx"
"$PYTHON" docker/check_stack.py "http://127.0.0.1:$API_PORT" "$workdir/model.onnx"
echo "compose-test: all checks passed"
