"""Check the running compose stack's `monitoring` profile from outside: `make compose-test` calls it.

    python docker/check_monitoring.py https://127.0.0.1:API_PORT http://127.0.0.1:PROMETHEUS_PORT
    (harness/stack_client.py's variables: the CA and the token)

1. The prometheus container is locked down like the others, its UI published on 127.0.0.1 only.
2. Prometheus has loaded every rule of deploy/prometheus/rules, and each evaluates without error.
3. It scrapes every api replica directly: one target per running replica (at the address Docker gave it), all up.
4. Non-garments (uniform noise) sent through the proxy make FashionSoftmaxFlaggedShareHigh fire within its
   `for` and a margin.
Each wait is bounded and its time printed. Uses the COMPOSE_* variables of the caller; exits non-zero on the
first failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests
import yaml

from harness import stack_client
from harness.compose import check, compose, docker, ok
from harness.images import png

RULES = Path(__file__).resolve().parents[1] / "deploy/prometheus/rules"
JOB = "fashion-softmax-api"  # deploy/prometheus/prometheus.yml's scrape job
API_PORT = 8000
ALERT = "FashionSoftmaxFlaggedShareHigh"
NOISE_BATCH = 32  # images per request; a batch every NOISE_EVERY_S keeps the 5-minute share near 100%
NOISE_EVERY_S = 0.5
ALERT_MARGIN_S = 60  # past the alert's `for`: a scrape, an evaluation and the proxy's traffic getting there


def api(prometheus: str, path: str, **params) -> dict:
    """The `data` of a Prometheus HTTP API answer (https://prometheus.io/docs/prometheus/latest/querying/api/)."""
    answer = requests.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    if body["status"] != "success":
        raise RuntimeError(f"/api/v1/{path}: {body}")
    return body["data"]


def wait_for(what: str, look: Callable[[], tuple[bool, str]], seconds: float, every_s: float = 1.0) -> float:
    """Poll `look` (-> done, what it saw) until done; the seconds it took, or exit saying what it saw last."""
    started = time.monotonic()
    while True:
        done, seen = look()
        waited = time.monotonic() - started
        if done:
            return waited
        if waited > seconds:
            sys.exit(f"compose-test: FAILED: {what}: not after {seconds:.0f} s; last seen: {seen}")
        time.sleep(every_s)


# What the answers of /api/v1/rules, /api/v1/targets and /api/v1/alerts say, for the waits below.


def shipped_rules() -> set[str]:
    """The names of the recording and alerting rules in deploy/prometheus/rules."""
    groups = [group for path in sorted(RULES.glob("*.yml")) for group in yaml.safe_load(path.read_text())["groups"]]
    return {rule.get("record") or rule["alert"] for group in groups for rule in group["rules"]}


def rules_state(rules: dict) -> tuple[dict[str, str], dict[str, float]]:
    """From /api/v1/rules: each rule's health ("ok", "err: ...", "unknown" before its first evaluation), and
    each alert's `for` in seconds."""
    health, durations = {}, {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            health[rule["name"]] = rule["health"] if rule["health"] != "err" else f"err: {rule.get('lastError')}"
            if rule["type"] == "alerting":
                durations[rule["name"]] = rule["duration"]
    return health, durations


def scraped(targets: dict, job: str) -> dict[str, str]:
    """From /api/v1/targets: the active targets of `job`, address -> health ("up", "down: <error>", "unknown")."""
    found = {}
    for target in targets["activeTargets"]:
        if target["labels"].get("job") == job:
            error = target.get("lastError")
            found[target["labels"]["instance"]] = f"down: {error}" if target["health"] == "down" else target["health"]
    return found


def alert_states(alerts: dict, name: str) -> list[str]:
    """From /api/v1/alerts: the states of the alerts called `name`, "pending since <time>" or "firing since <time>"."""
    return [f"{alert['state']} since {alert['activeAt']}" for alert in alerts["alerts"]
            if alert["labels"]["alertname"] == name]  # fmt: skip


# The checks.


def locked_down(prometheus_port: int) -> None:
    (container,) = compose("ps", "-q", "prometheus").split()
    host = json.loads(docker("inspect", "--format", "{{json .HostConfig}}", container))
    settings = (host["ReadonlyRootfs"], host["CapDrop"], host["SecurityOpt"], host["PidsLimit"] > 0)
    hardened = settings == (True, ["ALL"], ["no-new-privileges:true"], True)
    check(hardened, f"prometheus: read-only root, capabilities dropped, no-new-privileges, pids limit {settings}")
    user = docker("inspect", "--format", "{{.Config.User}}", container)
    uid = compose("exec", "-T", "prometheus", "id", "-u")
    effective = compose("exec", "-T", "prometheus", "sh", "-c", "grep CapEff /proc/1/status | cut -f2")
    probe = ["docker", "compose", "exec", "-T", "prometheus", "touch", "/probe"]
    writable = subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    check(
        uid != "0" and effective == "0" * 16 and not writable,
        f"prometheus runs as user {user} (uid {uid}) with no effective capabilities; its root is not writable",
    )
    bindings = host["PortBindings"]
    published = bindings == {"9090/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(prometheus_port)}]}
    check(published, f"prometheus publishes only its UI, on 127.0.0.1:{prometheus_port} ({bindings})")


def rules_loaded(prometheus: str) -> dict[str, float]:
    """Every shipped rule loaded and evaluated without error; returns each alert's `for` in seconds."""
    expected = shipped_rules()
    durations: dict[str, float] = {}

    def look() -> tuple[bool, str]:
        health, found = rules_state(api(prometheus, "rules"))
        durations.update(found)
        not_ok = {name: state for name, state in health.items() if state != "ok"}
        return set(health) == expected and not not_ok, f"missing {sorted(expected - set(health))}, {not_ok}"

    waited = wait_for("every rule of deploy/prometheus/rules loaded and evaluated", look, seconds=60)
    ok(f"Prometheus evaluates all {len(expected)} rules without error (after {waited:.0f} s)")
    return durations


def every_replica_scraped(prometheus: str) -> None:
    replicas = compose("ps", "-q", "api").split()
    addresses = set()
    for container in replicas:
        ip = docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)
        addresses.add(f"{ip}:{API_PORT}")

    def look() -> tuple[bool, str]:
        targets = scraped(api(prometheus, "targets", state="active"), JOB)
        return set(targets) == addresses and set(targets.values()) == {"up"}, str(targets)

    waited = wait_for(f"one target per api replica, all up ({sorted(addresses)})", look, seconds=60)
    ok(f"Prometheus scrapes each of the {len(replicas)} api replicas directly, all up (after {waited:.0f} s)")


def noise_pngs(count: int, seed: int = 0) -> list[bytes]:
    """Uniform random 28x28 grayscale images, as PNG files: nothing like a garment."""
    rng = np.random.default_rng(seed)
    return [png(rng.integers(0, 256, size=(28, 28), dtype=np.uint8)) for _ in range(count)]


def flagged_share_alert_fires(url: str, prometheus: str, for_s: float) -> None:
    """Send noise through the proxy until the alert fires: the flagged images counted, then pending, then firing."""
    files = [("image", (f"noise-{i}.png", png, "image/png")) for i, png in enumerate(noise_pngs(NOISE_BATCH))]
    session, sent, started = stack_client.session(), 0, time.monotonic()
    answers: list[dict] = []

    def send_noise() -> None:
        nonlocal sent
        response = session.post(f"{url}/predict", files=files, timeout=30)
        if response.status_code != 200:
            sys.exit(f"compose-test: FAILED: noise batch answered {response.status_code}: {response.text[:200]}")
        answers.extend(response.json()["predictions"])
        sent += NOISE_BATCH

    def counted() -> tuple[bool, str]:
        send_noise()
        query = f'sum(fashion_softmax_images_flagged_total{{job="{JOB}"}}) > 0'
        result = api(prometheus, "query", query=query)["result"]
        return bool(result), f"{query}: {result}, {sent} noise images sent"

    waited = wait_for("the api's flagged images in Prometheus", counted, seconds=30, every_s=NOISE_EVERY_S)
    flagged = sum(1 for answer in answers if answer.get("in_distribution") is False)
    check(
        flagged > 0.9 * len(answers),
        f"the api flags {flagged} of {len(answers)} noise images; Prometheus counts them after {waited:.0f} s",
    )

    def firing() -> tuple[bool, str]:
        send_noise()
        states = alert_states(api(prometheus, "alerts"), ALERT)
        share = api(prometheus, "query", query=f'job:fashion_softmax_images_flagged:ratio_rate5m{{job="{JOB}"}}')
        shares = [round(float(sample["value"][1]), 3) for sample in share["result"]]
        seen = f"{ALERT} {states or 'inactive'}, flagged share over 5 min {shares}, {sent} noise images sent"
        return any(state.startswith("firing") for state in states), seen

    waited = wait_for(f"{ALERT} firing", firing, seconds=for_s + ALERT_MARGIN_S, every_s=NOISE_EVERY_S)
    ok(
        f"{ALERT} fires {time.monotonic() - started:.0f} s after the first noise image ({waited:.0f} s after "
        f"Prometheus counted them; its `for` is {for_s:.0f} s); {sent} noise images sent"
    )


def main(url: str, prometheus: str) -> None:
    locked_down(int(prometheus.rsplit(":", 1)[1]))  # `up --wait` has waited for its healthcheck: it is ready
    durations = rules_loaded(prometheus)
    every_replica_scraped(prometheus)
    flagged_share_alert_fires(url, prometheus, durations[ALERT])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
