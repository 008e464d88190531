#!/bin/sh
# The proxy container's command: the limits' configuration, then nginx in the foreground, reloaded when the
# api replicas change.
# nginx 1.22 (Debian's, and the offline stand-in) resolves upstream names only at start and reload;
# `server api:8000 resolve` would need nginx >= 1.27.3. So: look every 2 s, reload on a change.
set -eu
replicas() { getent ahostsv4 api | awk '{print $1}' | sort -u | tr '\n' ' '; }

# The limits per client from the environment (docker-compose.yml's API_* variables), as nginx directives.
count() {  # NAME DEFAULT: the variable's value, a positive integer, or the default
  value=$(eval "echo \${$1:-$2}")
  case "$value" in ''|*[!0-9]*|0) echo "proxy: $1 must be a positive integer, not '$value'" >&2; exit 1 ;; esac
  echo "$value"
}
rate=$(count RATE_LIMIT 50)  # one assignment a line: set -e sees each one's status
burst=$(count RATE_BURST 100)
address_rate=$(count ADDRESS_RATE_LIMIT 1000)
client_requests=$(count CONNECTIONS_PER_CLIENT 32)
address_connections=$(count CONNECTIONS_PER_ADDRESS 256)
for file in tls.crt tls.key; do
  if [ ! -r "/etc/nginx/tls/$file" ]; then
    echo "proxy: cannot read /etc/nginx/tls/$file: run \`make certs\`, or mount your own pair (API_TLS_DIR)" >&2
    exit 1
  fi
done
mkdir -p /tmp/nginx
cat > /tmp/nginx/limits.conf <<LIMITS
# Written by docker/proxy/run.sh. A client: its token, else its address (\$client_key, nginx.conf).
limit_req_zone \$client_key zone=per_client:10m rate=${rate}r/s;
limit_req_zone \$binary_remote_addr zone=per_address:10m rate=${address_rate}r/s;
limit_conn_zone \$client_key zone=client_requests:10m;
limit_conn_zone \$binary_remote_addr zone=address_connections:10m;
limit_req zone=per_client burst=${burst} nodelay;
limit_req zone=per_address burst=$((2 * address_rate)) nodelay;
limit_conn client_requests ${client_requests};
limit_conn address_connections ${address_connections};
LIMITS
echo "proxy: per client ${rate} requests/s (burst ${burst}), ${client_requests} at once;" \
  "per address ${address_rate} requests/s, ${address_connections} at once"
known=$(replicas)
nginx -g 'daemon off;' &
nginx_pid=$!
trap 'kill -QUIT "$nginx_pid"; wait "$nginx_pid"; exit 0' TERM INT QUIT
echo "proxy: api replicas: $known"
while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep 2 &
  wait $! || true
  now=$(replicas || true)
  if [ -n "$now" ] && [ "$now" != "$known" ]; then
    echo "proxy: api replicas now: $now (were: $known); reloading nginx"
    known=$now
    nginx -s reload
  fi
done
wait "$nginx_pid"
