"""docker/check_monitoring.py (what `make compose-test` runs on the monitoring profile) against recorded answers.

tests/deploy/prometheus_answers/ holds answers of a real Prometheus (Debian's 2.42) running
deploy/prometheus/rules on two targets shaped like api replicas, from garments to noise: its rules, its
targets (both up; one down), its alerts (FashionSoftmaxFlaggedShareHigh pending; firing). Here a fake
Prometheus and a fake api on 127.0.0.1 replay them, so the check's reading and waiting are tested without Docker.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from harness import ROOT

ANSWERS = Path(__file__).with_name("prometheus_answers")


def load_check():
    spec = importlib.util.spec_from_file_location("check_monitoring", ROOT / "docker/check_monitoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_monitoring = load_check()


def answer(name: str) -> dict:
    return json.loads((ANSWERS / f"{name}.json").read_text())


def test_the_recorded_rules_are_the_shipped_ones_all_healthy():
    health, durations = check_monitoring.rules_state(answer("rules")["data"])
    assert set(health) == check_monitoring.shipped_rules() and set(health.values()) == {"ok"}
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/rules/alerts.yml").read_text())["groups"][0]["rules"]
    assert durations[check_monitoring.ALERT] == 120
    assert set(durations) == {rule["alert"] for rule in alerts}


def test_a_rule_that_fails_to_evaluate_is_reported_with_its_error():
    rules = answer("rules")["data"]
    broken = rules["groups"][0]["rules"][0]
    broken.update(health="err", lastError="many-to-many matching not allowed")
    health, _ = check_monitoring.rules_state(rules)
    assert health[broken["name"]] == "err: many-to-many matching not allowed"


def test_targets_read_as_address_and_health():
    assert check_monitoring.scraped(answer("targets-up")["data"], check_monitoring.JOB) == {
        "127.0.0.1:18801": "up",
        "127.0.0.1:18802": "up",
    }
    one_down = check_monitoring.scraped(answer("targets-one-down")["data"], check_monitoring.JOB)
    assert one_down["127.0.0.1:18801"] == "up"
    assert one_down["127.0.0.1:18802"].startswith("down: ") and "connection refused" in one_down["127.0.0.1:18802"]
    assert check_monitoring.scraped(answer("targets-up")["data"], "another-job") == {}


def test_alert_states_of_one_alert():
    alert = check_monitoring.ALERT
    assert check_monitoring.alert_states(answer("alerts-none")["data"], alert) == []
    assert check_monitoring.alert_states(answer("alerts-pending")["data"], alert) == [
        "pending since 2026-11-30T03:20:33.669157432Z"
    ]
    assert check_monitoring.alert_states(answer("alerts-firing")["data"], alert) == [
        "firing since 2026-11-30T03:16:43.669157432Z"
    ]


def test_wait_for_returns_the_time_taken_or_exits_with_what_it_saw_last():
    looks = iter([(False, "first"), (False, "second"), (True, "third")])
    assert check_monitoring.wait_for("three looks", lambda: next(looks), seconds=5, every_s=0.01) < 1
    with pytest.raises(SystemExit, match=r"never: not after 0 s; last seen: still no"):
        check_monitoring.wait_for("never", lambda: (False, "still no"), seconds=0.05, every_s=0.01)


class FakeStack:
    """One server on 127.0.0.1 for both: POST /predict answers a batch of flagged predictions; GET /api/v1/...
    replays recorded answers, /api/v1/alerts in turn from `alerts` (the last one repeated)."""

    def __init__(self, alerts: list[str], flagged_counted: bool = True):
        self.alerts, self.posts = list(alerts), 0
        flagged = answer("query-flagged") if flagged_counted else {"status": "success", "data": {"result": []}}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                fake.posts += 1
                predictions = [{"label": "Bag", "in_distribution": False}] * check_monitoring.NOISE_BATCH
                self.reply({"predictions": predictions})

            def do_GET(self):
                if self.path.startswith("/api/v1/alerts"):
                    self.reply(answer(fake.alerts.pop(0) if len(fake.alerts) > 1 else fake.alerts[0]))
                elif "fashion_softmax_images_flagged_total" in self.path:
                    self.reply(flagged)
                else:
                    self.reply(answer("query-share"))

            def reply(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setenv("FASHION_SOFTMAX_TOKEN", "a-token")  # what compose_test.sh exports (the fake ignores it)
    monkeypatch.setattr(check_monitoring, "NOISE_EVERY_S", 0.01)
    monkeypatch.setattr(check_monitoring, "ALERT_MARGIN_S", 1)


def test_the_alert_check_sends_noise_until_the_alert_fires(fast, capsys):
    stack = FakeStack(["alerts-none", "alerts-pending", "alerts-pending", "alerts-firing"])
    try:
        check_monitoring.flagged_share_alert_fires(stack.url, stack.url, for_s=5)
    finally:
        stack.close()
    assert stack.posts >= 4  # one noise batch before each look
    printed = capsys.readouterr().out
    assert f"the api flags {check_monitoring.NOISE_BATCH} of {check_monitoring.NOISE_BATCH} noise images" in printed
    assert "FashionSoftmaxFlaggedShareHigh fires" in printed and "its `for` is 5 s" in printed


def test_the_alert_check_fails_when_the_alert_stays_pending(fast):
    stack = FakeStack(["alerts-pending"])
    try:
        seen = r"FashionSoftmaxFlaggedShareHigh \['pending since .*\], flagged share over 5 min \[0\.85\]"
        with pytest.raises(
            SystemExit, match=rf"FashionSoftmaxFlaggedShareHigh firing: not after 1 s; last seen: {seen}"
        ):
            check_monitoring.flagged_share_alert_fires(stack.url, stack.url, for_s=0)
    finally:
        stack.close()


def test_the_alert_check_fails_at_once_when_the_service_counts_no_flagged_images(fast, monkeypatch):
    monkeypatch.setattr(check_monitoring, "wait_for", shortened(check_monitoring.wait_for, seconds=0.2))
    stack = FakeStack(["alerts-none"], flagged_counted=False)
    try:
        with pytest.raises(SystemExit, match=r"flagged images in Prometheus: not after 0 s; last seen: .*\[\]"):
            check_monitoring.flagged_share_alert_fires(stack.url, stack.url, for_s=120)
    finally:
        stack.close()


def shortened(wait_for, seconds: float):
    """wait_for with every deadline cut to `seconds`."""
    return lambda what, look, **options: wait_for(what, look, **{**options, "seconds": seconds})
