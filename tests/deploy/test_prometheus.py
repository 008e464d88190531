"""The Prometheus configuration and rules in deploy/prometheus/, and the compose profile that runs them.

promtool (Debian's `prometheus` package) checks the configuration and the rule files and runs the rules' unit
tests (deploy/prometheus/tests/); the rest cross-checks names: the metrics the rules read are the ones the
service exports, the job they select is the one scraped, the compose service mounts what the configuration
names, and the README lists every alert.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness import ROOT
from harness.ci import skip_or_fail
from harness.images import png
from serving import create_app

PROMETHEUS = ROOT / "deploy/prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*_test.yml"))
JOB = "fashion-softmax-api"


def promtool(*args: str | Path) -> subprocess.CompletedProcess:
    path = shutil.which("promtool")
    if path is None:
        skip_or_fail("promtool not found: sudo apt-get install prometheus")
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=120)


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]  # fmt: skip


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def unit_tests(name: str) -> list[dict]:
    return yaml.safe_load((PROMETHEUS / "tests" / name).read_text())["tests"]


def test_the_rule_files_pass_promtool_check():
    finished = promtool("check", "rules", *RULE_FILES)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.count("SUCCESS") == len(RULE_FILES) == 2


def test_the_rules_unit_tests_pass():
    finished = promtool("test", "rules", *UNIT_TESTS)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.count("SUCCESS") == len(UNIT_TESTS) == 2


def test_every_alert_is_unit_tested_firing_and_quiet():
    fired, quiet = set(), set()
    for test in unit_tests("alerts_test.yml"):
        for case in test["alert_rule_test"]:
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    assert fired == quiet == set(alerts())


def test_every_recording_rule_is_unit_tested():
    tested = " ".join(case["expr"] for test in unit_tests("recording_test.yml") for case in test["promql_expr_test"])
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    assert {name for name in recorded if not re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", tested)} == set()


def test_every_alert_says_how_bad_it_is_and_what_to_check():
    for name, rule in alerts().items():
        assert name.startswith("FashionSoftmax")
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert set(rule["annotations"]) == {"summary", "description"}, name
        assert len(rule["annotations"]["description"]) > 150, name  # what it means and what to look at


def test_the_configuration_passes_promtool_check(tmp_path):
    """The shipped file, with the token file it names (mounted by compose) in a place that exists here."""
    config = yaml.safe_load(CONFIG.read_text())
    (job,) = config["scrape_configs"]
    token = tmp_path / "api_token"
    token.write_text("")
    job["authorization"]["credentials_file"] = str(token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")  # rule_files are relative to the configuration
    finished = promtool("check", "config", tmp_path / "prometheus.yml")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "SUCCESS: 2 rule files found" in finished.stdout


def test_prometheus_scrapes_every_api_replica_under_the_job_the_rules_select():
    (job,) = yaml.safe_load(CONFIG.read_text())["scrape_configs"]
    assert job["job_name"] == JOB
    (discovery,) = job["dns_sd_configs"]  # Docker's DNS: one A record per running replica of the service
    api = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]
    assert (discovery["names"], discovery["type"], [str(discovery["port"])]) == (["api"], "A", api["expose"])
    selected = set(re.findall(r'job="([^"]*)"', "".join(path.read_text() for path in RULE_FILES)))
    assert selected == {JOB}
    assert job["authorization"]["type"] == "Bearer"


def test_the_monitoring_profile_runs_prometheus_locked_down_on_the_shipped_files():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["prometheus"]
    assert service["profiles"] == ["monitoring"]
    assert [name for name, other in compose["services"].items() if other.get("profiles")] == ["prometheus"]
    assert (service["image"], service["pull_policy"]) == ("prom/prometheus:latest", "never")
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges:true"] and service["pids_limit"]
    assert service["user"].split(":")[0] not in {"0", "root"}
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    mounts = {}  # source -> (target, options)
    for volume in service["volumes"]:
        source, target, *options = volume.split(":")
        mounts[source] = (target, options)
    assert mounts == {
        "./deploy/prometheus/prometheus.yml": ("/etc/prometheus/prometheus.yml", ["ro"]),
        "./deploy/prometheus/rules": ("/etc/prometheus/rules", ["ro"]),  # where `rule_files: [rules/*.yml]` looks
        "prometheus": ("/prometheus", []),  # its data: a named volume, writable
    }
    assert "prometheus" in compose["volumes"]
    (secret,) = service["secrets"]
    (job,) = yaml.safe_load(CONFIG.read_text())["scrape_configs"]
    assert f"/run/secrets/{secret['target']}" == job["authorization"]["credentials_file"]
    assert secret["source"] in compose["secrets"]


def exported_names(text: str) -> set[str]:
    """The sample names an exposition can hold, from its families (a labelled family with no child yet has none)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in suffixes.get(family.type, ("",))}  # fmt: skip


def test_the_rules_read_only_metrics_the_service_exports(model_dir):
    client = create_app({"MODEL_DIR": str(model_dir), "MODEL_RELOAD_INTERVAL": 0}).test_client()
    image = png(np.zeros((28, 28), dtype=np.uint8))
    assert client.post("/predict", data=image, content_type="image/png").status_code == 200
    exported = exported_names(client.get("/metrics").text)
    read = set(re.findall(r"(?<![\w:])fashion_softmax_\w+(?![\w:])", "".join(p.read_text() for p in RULE_FILES)))
    assert read - exported == set(), "the rules read metrics the service does not export"


def test_the_readme_lists_every_alert():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Watching it in production", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"FashionSoftmax\w+", section)) == set(alerts())
