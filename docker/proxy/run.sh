#!/bin/sh
# The proxy container's command: nginx in the foreground, reloaded when the api replicas change.
# nginx 1.22 (Debian's, and the offline stand-in) resolves upstream names only at start and reload;
# `server api:8000 resolve` would need nginx >= 1.27.3. So: look every 2 s, reload on a change.
set -eu
replicas() { getent ahostsv4 api | awk '{print $1}' | sort -u | tr '\n' ' '; }

mkdir -p /tmp/nginx
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
