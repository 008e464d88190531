"""`make reliability` (bench/reliability.py, bench/fuzz.py) keeps to its time on any machine: too little
time gives figures that fall short, each in a row that says what was reached, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bench import fuzz
from bench.reliability import targets
from harness import ROOT
from harness.images import write_idx_set
from harness.server import ProductionServer


def test_a_scenario_that_failed_or_never_ran_is_a_missed_row():
    rows = targets({"memory": {"error": "WrkFailed: wrk gave no summary"}, "memory_after_load": {"error": "x"},
                    "load": {"error": "ServerExited: the server exited with 1"}})  # fmt: skip
    figures = {figure: (value, met) for figure, value, _, met in rows}
    assert figures["memory: not measured"] == ("WrkFailed: wrk gave no summary", False)
    assert figures["load: not measured"] == ("ServerExited: the server exited with 1", False)
    for name in ("fuzzing", "slow_clients", "worker_killed"):
        assert figures[f"{name}: not measured"] == ("did not run", False)


def test_fuzzing_with_less_time_than_schemathesis_needs_to_start_sends_nothing_and_says_so(model_dir, tmp_path):
    with ProductionServer(model_dir, tmp_path / "server.log") as server:
        result = fuzz.run(server, tmp_path, budget_s=fuzz.STARTUP_S)
    assert (result["requests"], result["runs"], result["runs_reported"]) == (0, 0, 0)
    rows = {figure: (value, met) for figure, value, _, met in targets({"fuzzing": result})}
    assert rows["fuzz: requests sent (server count)"] == (0, False)
    assert rows["fuzz: schemathesis runs that reported"] == ("0/0", False)


def test_fuzzing_ends_within_its_budget_and_counts_what_the_server_saw(model_dir, tmp_path):
    with ProductionServer(model_dir, tmp_path / "server.log", with_token=True) as server:  # as make reliability
        before = server.requests_counted()
        started = time.monotonic()
        result = fuzz.run(server, tmp_path, budget_s=25)
        took = time.monotonic() - started
        counted = server.requests_counted() - before - 1  # less the scrape `before`
    assert took < 25 + fuzz.GRACE_S + 12  # the budget, its grace, and stopping what still runs at the end
    assert result["runs"] == result["runs_reported"] == 2, result["by_method"]
    assert {run["stop_reason"] for run in result["by_method"].values()} <= {"max_time", "completed"}
    assert 0 < result["requests"] <= counted <= result["requests"] + 5  # + fuzz.run's own scrapes
    assert result["test_cases"] <= result["requests"]
    assert result["server_5xx"] == result["failures"] == result["worker_deaths"] == 0, result["failed_checks"]


def test_a_run_with_far_too_little_time_completes_with_figures(model_dir, tmp_path, needs_wrk):
    write_idx_set(tmp_path / "data" / "FashionMNIST" / "raw", train_count=64, test_count=16)
    report = tmp_path / "reliability.json"
    command = [sys.executable, "-m", "bench.reliability", "--time-scale", "0.03", "--model-dir", str(model_dir),
               "--data-dir", str(tmp_path / "data"), "--report", str(report)]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in finished.stdout + finished.stderr, finished.stderr
    assert finished.returncode == 1  # targets missed: too little time for 100,000 requests
    written = json.loads(report.read_text())
    rows = {row["figure"]: row for row in written["targets"]}
    reached = rows["memory: requests at the second reading"]
    assert not reached["met"] and 0 < reached["value"] < 100_000 and reached["target"] == ">= 100000"
    assert rows["fuzz: requests sent (server count)"]["met"] is False
    assert not any(figure.endswith("not measured") for figure in rows), rows
    assert written["time_scale"] == 0.03 and written["budgets_s"]["load"] == pytest.approx(1.8)
    assert "every target met" not in finished.stdout and "target(s) missed" in finished.stdout


def test_a_time_scale_that_is_not_positive_is_one_line():
    finished = subprocess.run([sys.executable, "-m", "bench.reliability", "--time-scale", "0"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert finished.returncode == 1 and finished.stderr.strip().count("\n") == 0
    assert "--time-scale must be a positive number" in finished.stderr
