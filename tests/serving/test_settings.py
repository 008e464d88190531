"""The service's settings do what the README says: FASHION_SOFTMAX_ORT_THREADS sizes onnxruntime's thread pool,
FASHION_SOFTMAX_LOG_LEVEL filters the service's own log lines, FASHION_SOFTMAX_ACCESS_LOG turns Granian's access
log on for any value but "0" or empty, and the server clears an earlier run's metric samples before it starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from harness import ROOT
from harness.images import GARMENTS, png
from harness.server import ProductionServer
from serving import create_app
from serving.server import build_server, prepare_metrics_dir


def threads_after_loading(model_dir: Path, ort_threads: int) -> int:
    """The threads of a fresh process that has created the app (its onnxruntime session) with this setting."""
    count = "import os, sys; from serving import create_app; create_app({'MODEL_DIR': sys.argv[1]}); " \
            "print(len(os.listdir('/proc/self/task')))"  # fmt: skip
    env = {**os.environ, "FASHION_SOFTMAX_ORT_THREADS": str(ort_threads), "FASHION_SOFTMAX_MODEL_RELOAD_INTERVAL": "0"}
    finished = subprocess.run([sys.executable, "-c", count, str(model_dir)], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=True)  # fmt: skip
    return int(finished.stdout)


def test_ort_threads_sizes_the_sessions_thread_pool(model_dir):
    # onnxruntime's intra-op pool runs N - 1 threads of its own beside the caller's
    one, two, four = (threads_after_loading(model_dir, threads) for threads in (1, 2, 4))
    assert (two - one, four - one) == (1, 3)


def post_with_request_id(client, request_id: str) -> None:
    response = client.post("/predict", data=png(GARMENTS[1]), content_type="image/png",
                           headers={"X-Request-ID": request_id})  # fmt: skip
    assert response.status_code == 200


@pytest.mark.parametrize(("level", "logged"), [("INFO", True), ("WARNING", False)])
def test_log_level_filters_the_request_id_lines(model_dir, monkeypatch, caplog, level, logged):
    monkeypatch.setenv("FASHION_SOFTMAX_LOG_LEVEL", level)
    app = create_app({"MODEL_DIR": str(model_dir), "MODEL_RELOAD_INTERVAL": 0})
    caplog.set_level("DEBUG")  # what reaches the handlers is the `serving` logger's own level
    post_with_request_id(app.test_client(), f"level-{level}")
    found = [record for record in caplog.records if f"request level-{level}:" in record.getMessage()]
    assert len(found) == (1 if logged else 0)


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("-", True), ("yes", True), ("false", True), ("0", False), ("", False), (None, False)],
)
def test_access_log_is_on_for_any_value_but_0_or_empty(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("FASHION_SOFTMAX_ACCESS_LOG", raising=False)
    else:
        monkeypatch.setenv("FASHION_SOFTMAX_ACCESS_LOG", value)
    assert build_server().log_access is on


@pytest.mark.parametrize(("value", "on"), [("1", True), ("0", False)])
def test_the_running_server_logs_each_request_only_with_the_access_log_on(model_dir, tmp_path, value, on):
    path = f"/nowhere-{time.time_ns()}"  # a 404 no other request makes
    server = ProductionServer(model_dir, tmp_path / "server.log", workers=1, access_log=value)
    with server:
        response = requests.get(f"{server.url}{path}", headers={"X-Request-ID": path}, timeout=5)
        assert response.status_code == 404
        server.wait_for_log(f"request {path}: GET {path} -> 404")  # the app's own line: the request was served
    access_line = f'"GET {path} HTTP/1.1" 404'  # Granian's access log format
    assert (access_line in server.log_text()) is on  # the server has stopped: its output is complete


def counters_in(folder: Path) -> str:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return generate_latest(registry).decode()


def test_an_earlier_runs_metric_samples_are_cleared_before_the_workers_start(tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    folder.mkdir()
    earlier_run = "from prometheus_client import Counter; Counter('earlier_requests', 'x').inc(5)"
    subprocess.run([sys.executable, "-c", earlier_run], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
                   check=True, timeout=60)  # fmt: skip
    assert "earlier_requests_total 5.0" in counters_in(folder)  # what /metrics would add to the new run's counts
    (folder / "notes.txt").write_text("not a sample file")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    prepare_metrics_dir()
    assert "earlier_requests" not in counters_in(folder)
    assert not list(folder.glob("*.db")) and (folder / "notes.txt").exists()


def test_without_a_metrics_folder_the_server_makes_a_fresh_one(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # so that the one set below is undone too
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    prepare_metrics_dir()
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    try:
        assert folder.is_dir() and not any(folder.iterdir())
    finally:
        shutil.rmtree(folder)
