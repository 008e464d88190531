"""Check the running compose stack's proxy and its behaviour under faults: `make compose-test` calls it.

0. The proxy: X-Request-ID generated or passed on, returned, and logged by the app; its own 413 is
   JSON in the app's formats (native and /v2).
1. 50 clients send headers and stall for 20 s: ordinary requests are not delayed (p99 < 100 ms).
2. A replica's main process is killed (SIGKILL from the host: a crash) under load: < 0.1% of
   requests fail and Docker restarts it (restart: unless-stopped).
3. `docker kill` of a replica under load: < 0.1% fail; Docker treats that as an explicit stop, so
   `docker compose up -d --wait` brings the replica back.
4. `TRAIN_SEED=1 docker compose run --rm train` under load: the new model is served by every
   replica within 10 s of publication, with zero failed requests.
Uses the COMPOSE_* variables of the caller. Exits non-zero on the first failure.

    PYTHONPATH=. python docker/check_resilience.py https://127.0.0.1:PORT   (harness/stack_client.py's variables)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

from harness.compose import check, compose, docker
from harness.images import GARMENTS, png
from harness.loadgen import Load
from harness.probes import slow_clients_while_timing
from harness.stack_client import auth, session

STALLED = 50
STALL_SECONDS = 20
MAX_FAILED_FRACTION = 0.001


def api_replicas() -> list[str]:
    return compose("ps", "-q", "api").split()


def wait_healthy(container: str, seconds: float = 90) -> float:
    """Seconds until `container` is running and healthy (again)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        state = docker("inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                       container)  # fmt: skip
        if state == "running healthy":
            return time.monotonic() - started
        time.sleep(0.5)
    sys.exit(f"compose-test: FAILED: {container[:12]} not healthy again after {seconds} s")


GARMENT = png(GARMENTS[3])  # a Fashion-MNIST-like input: light on black


def load_on(url: str) -> Load:
    return Load(f"{url}/predict", GARMENT, "image/png", clients=4, limit_s=300, headers=auth())


def report_failures(load: Load, what: str) -> None:
    failed, total = load.failed(), len(load.answers)
    check(total > 200, f"{what}: {total} requests sent under load")
    fraction = len(failed) / total
    kinds = dict(Counter(str(answer.status) for answer in failed))  # HTTP status, or the client's exception
    check(fraction < MAX_FAILED_FRACTION,
          f"{what}: {len(failed)} of {total} requests failed ({fraction:.3%} < 0.1%) {kinds or ''}")  # fmt: skip


def proxy_behaviour(url: str) -> None:
    generated = session().get(f"{url}/health", timeout=5).headers.get("X-Request-ID", "")
    check(len(generated) == 32, f"the proxy generates an X-Request-ID when there is none ({generated})")
    request_id = f"compose-test-{time.time_ns()}"
    response = session().post(f"{url}/predict", data=GARMENT, headers={"Content-Type": "image/png",
                             "X-Request-ID": request_id}, timeout=10)  # fmt: skip
    check(response.headers.get("X-Request-ID") == request_id, "a client's X-Request-ID comes back")
    time.sleep(0.5)
    check(request_id in compose("logs", "--no-color", "api"), "the app logged the request id it was passed")
    too_large = b"\0" * (10 * 1024 * 1024 + 1)
    for path, is_v2 in (("/predict", False), ("/v2/models/fashion-softmax/infer", True)):
        response = session().post(f"{url}{path}", data=too_large, headers={"Content-Type": "image/png"}, timeout=30)
        error = response.json()["error"]
        well_formed = isinstance(error, str) if is_v2 else error["code"] == "request_entity_too_large"
        check(response.status_code == 413 and well_formed, f"an 11 MB body to {path}: 413 as JSON ({error})")


def stalled_clients(url: str) -> None:
    found = slow_clients_while_timing(
        url, GARMENT, STALLED, STALL_SECONDS, byte_every_s=None, timeout_s=10, headers=auth()
    )
    answered, sent = found["answered"], found["timed_requests"]
    check(sent > 0 and answered == sent, f"{STALLED} stalled clients for {STALL_SECONDS} s: {answered} of {sent} "
                                         f"ordinary requests answered {found['failures'] or ''}")  # fmt: skip
    check(found["p99_ms"] < 100, f"beside them: p50 {found['p50_ms']:.1f} ms, p99 {found['p99_ms']:.1f} ms (< 100 ms)")


def crashed_replica(url: str) -> None:
    victim = api_replicas()[0]
    restarts = int(docker("inspect", "-f", "{{.RestartCount}}", victim))
    with load_on(url) as load:
        time.sleep(3)
        pid = docker("inspect", "-f", "{{.State.Pid}}", victim)
        subprocess.run(["kill", "-KILL", pid], check=True)  # what an OOM kill or a crash looks like
        killed = time.monotonic()
        time.sleep(8)
    report_failures(load, "a replica's main process killed (SIGKILL)")
    wait_healthy(victim)
    restarted = int(docker("inspect", "-f", "{{.RestartCount}}", victim)) > restarts
    check(restarted, f"Docker restarted the crashed replica: healthy {time.monotonic() - killed:.1f} s after the kill")


def docker_killed_replica(url: str) -> None:
    replicas = api_replicas()
    with load_on(url) as load:
        time.sleep(3)
        docker("kill", replicas[-1])
        time.sleep(8)
    report_failures(load, "`docker kill` of a replica")
    compose("up", "-d", "--wait", "--wait-timeout", "120", "api")
    healthy = [container for container in api_replicas() if wait_healthy(container) is not None]
    check(
        len(healthy) == len(replicas), f"`docker compose up -d --wait` brought it back: {len(healthy)} healthy replicas"
    )


def published_at(wall_to_monotonic: float) -> float:
    """When the manifest was published (its mtime in the artifacts volume), on the monotonic clock."""
    mounts = '{{range .Mounts}}{{if eq .Destination "/artifacts"}}{{.Name}}{{end}}{{end}}'
    volume = docker("inspect", "-f", mounts, api_replicas()[0])
    mountpoint = docker("volume", "inspect", "-f", "{{.Mountpoint}}", volume)
    return os.stat(os.path.join(mountpoint, "model.json")).st_mtime + wall_to_monotonic


def rollout(url: str) -> None:
    before = session().get(f"{url}/ready", timeout=5).json()["model"]["version"]
    with load_on(url) as load:
        time.sleep(2)
        compose("run", "--rm", "train", env={"TRAIN_SEED": "1"})  # what a user runs to retrain
        published = published_at(time.monotonic() - time.time())
        after = json.loads(compose("exec", "-T", "api", "cat", "/artifacts/model.json"))["version"]
        time.sleep(max(0.0, published + 12 - time.monotonic()))
    check(after != before, f"the training run published a new model ({before} -> {after})")
    first_new = min((answer.at for answer in load.answers if answer.version == after), default=float("inf"))
    check(first_new - published < 10, f"the new model answered {first_new - published:.1f} s after publication")
    settled = load.versions_after(published + 10)
    check(settled == {after}, f"every replica serves {after} 10 s after publication (seen: {sorted(settled)})")
    check(not load.failed(), f"rollout under load: 0 of {len(load.answers)} requests failed")


def main(url: str) -> None:
    proxy_behaviour(url)
    stalled_clients(url)
    crashed_replica(url)
    docker_killed_replica(url)
    rollout(url)


if __name__ == "__main__":
    main(sys.argv[1])
