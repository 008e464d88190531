#!/usr/bin/env bash
# make compose-test: build and start the whole stack for real, check it from outside, tear it down.
# Needs a Docker engine with Compose v2 (../shared/tools/docker-up.sh provides one offline) and
# Debian's dataset-fashion-mnist on the host: the training container gets it read-only, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

export COMPOSE_PROJECT_NAME=fashion-softmax-test
export COMPOSE_FILE=docker-compose.yml:docker/compose.offline-data.yml:docker/compose.plain-port.yml
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port)
API_PLAIN_PORT=$(free_port)
export API_PORT API_PLAIN_PORT
# --- The monitoring profile (Prometheus) runs beside the stack; docker/check_monitoring.py checks it.
export COMPOSE_PROFILES=monitoring
PROMETHEUS_PORT=$(free_port)
export PROMETHEUS_PORT
workdir=$(mktemp -d)
# What make up makes, for this run only (the user's secrets/ stay as they are): a token and a development
# certificate. The checks reach the stack as a user does, over https with both (docker/stack_client.py).
sh docker/proxy/certs.sh "$workdir/tls" >/dev/null
FASHION_SOFTMAX_TOKEN=$("$PYTHON" serving/tokens.py add compose-test --file "$workdir/api/tokens" 2>/dev/null)
export FASHION_SOFTMAX_TOKEN REQUESTS_CA_BUNDLE="$workdir/tls/ca.crt"
# Prometheus' own token, the token alone in a file its user (nobody) can read
mkdir -p "$workdir/prometheus"
"$PYTHON" serving/tokens.py add prometheus --file "$workdir/api/tokens" 2>/dev/null > "$workdir/prometheus/token"
chmod 0755 "$workdir/prometheus" && chmod 0644 "$workdir/prometheus/token"
export PROMETHEUS_API_TOKEN_FILE="$workdir/prometheus/token"
export API_TOKENS_DIR="$workdir/api" API_TLS_DIR="$workdir/tls"
# The load checks measure the service, not the proxy's limits: those are raised here (docker/check_limits.py
# restarts the proxy with small ones to test them).
export API_RATE_LIMIT=100000 API_RATE_BURST=100000 API_ADDRESS_RATE_LIMIT=100000
export API_CONNECTIONS_PER_CLIENT=1000 API_CONNECTIONS_PER_ADDRESS=1000

cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then docker compose logs --no-color --tail 50 || true; fi
  docker compose down -v --remove-orphans || true
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
ok() { echo "compose-test: ok: $*"; }
fail() { echo "compose-test: FAILED: $*"; exit 1; }

docker compose config -q
ok "docker compose config"
started=$(date +%s)
docker compose up -d --build --wait --wait-timeout 900
ok "up --wait in $(( $(date +%s) - started )) s; proxy on https://127.0.0.1:$API_PORT"

[ "$(docker compose ps --status exited --format '{{.Service}}' train)" = train ] || fail "train did not exit"
replicas=$(docker compose ps -q api | wc -l)
[ "$replicas" -eq 2 ] || fail "$replicas api replicas instead of 2"
for container in $(docker compose ps -q api proxy); do
  [ "$(docker inspect --format '{{.State.Health.Status}}' "$container")" = healthy ] || fail "$container unhealthy"
done
ok "train completed; 2 api replicas and the proxy healthy"
for container in $(docker compose ps -q api); do
  [ "$(docker inspect --format '{{json .NetworkSettings.Ports}}' "$container")" = '{"8000/tcp":null}' ] \
    || fail "an api replica publishes a port of its own"
done
ok "only the proxy publishes a port"

# Hardening: every container (the exited train one too) read-only, no capabilities, no privilege gain,
# a pids limit, a tmpfs at /tmp; the running ones as non-root users.
for container in $(docker compose ps -a -q train api proxy); do
  settings=$(docker inspect --format \
    '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.PidsLimit}} {{index .HostConfig.Tmpfs "/tmp"}}' \
    "$container")
  name=$(docker inspect --format '{{.Name}}' "$container")
  [[ "$settings" == "true [ALL] [no-new-privileges:true] "[1-9]* ]] || fail "$name is not hardened: $settings"
  ok "$name: read-only root, capabilities dropped, no-new-privileges, pids limit, tmpfs /tmp ($settings)"
done
for service in api proxy; do
  [ "$(docker compose exec -T "$service" id -u)" != 0 ] || fail "$service runs as root"
  [ "$(docker compose exec -T "$service" sh -c 'grep CapEff /proc/1/status | cut -f2')" = 0000000000000000 ] \
    || fail "$service has effective capabilities"
  docker compose exec -T "$service" touch /probe 2>/dev/null && fail "$service can write its root filesystem"
done
ok "api and proxy run as non-root users with no capabilities and cannot write their root filesystems"
docker compose exec -T api sh -c 'ls /tmp/metrics/*.db' >/dev/null || fail "no metrics files in the api's tmpfs"
ok "the api keeps its metrics samples in its tmpfs"
docker compose exec -T api touch /artifacts/probe 2>/dev/null && fail "artifacts are writable from the api"
ok "artifacts are mounted read-only"
docker compose exec -T api python -c 'import torch' 2>/dev/null && fail "torch is importable in the serving image"
ok "no torch in the serving image"
found=$(docker compose exec -T api sh -c \
  'for tool in pip pip3 apt apt-get dpkg gcc cc c++ make; do command -v "$tool"; done; python -c "import pip" 2>/dev/null && echo pip-module' \
  || true)
[ -z "$found" ] || fail "the serving image has a package manager or compiler: $found"
ok "no package manager or compiler in the serving image"

docker compose cp api:/artifacts/model.onnx "$workdir/model.onnx"
PYTHONPATH=. "$PYTHON" docker/check_stack.py "https://127.0.0.1:$API_PORT" "$workdir"
# --- Monitoring, before the faults below disturb the traffic it reads: Prometheus scrapes every replica (with
# its own token), evaluates the rules, and the flagged-share alert fires on non-garments (its `for`, 2 min, and
# a minute).
PYTHONPATH=. "$PYTHON" docker/check_monitoring.py "https://127.0.0.1:$API_PORT" "http://127.0.0.1:$PROMETHEUS_PORT"
PYTHONPATH=. "$PYTHON" docker/check_resilience.py "https://127.0.0.1:$API_PORT"
PYTHONPATH=. "$PYTHON" docker/check_access.py "https://127.0.0.1:$API_PORT" "$workdir/api/tokens"
PYTHONPATH=. "$PYTHON" docker/check_limits.py "https://127.0.0.1:$API_PORT" "$API_PLAIN_PORT" "$workdir/api/tokens"
echo "compose-test: all checks passed"
