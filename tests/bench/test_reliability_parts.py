"""The parts `make reliability` stands on, against the real production server on 127.0.0.1 (2 workers).

Worker discovery, the server's own request count, RSS, a killed worker being replaced, wrk's totals, and
the slow-client harness: each would make the reliability figures wrong if it were.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import requests

from bench import wrk
from bench.bench_serve import png
from bench.production_server import ProductionServer, rss_kib
from bench.slow_clients import trickle_while_timing
from tests.helpers import skip_or_fail

PNG = png(np.zeros((28, 28), np.uint8))


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    with ProductionServer(model_dir, tmp_path_factory.mktemp("server") / "server.log") as running:
        yield running
    assert not running.alive()  # stopped, workers and all


def post(server: ProductionServer) -> int:
    return requests.post(
        f"{server.url}/predict", data=PNG, headers={"Content-Type": "image/png"}, timeout=10
    ).status_code


def test_the_two_workers_are_the_servers_children_with_a_resident_size(server):
    workers = server.worker_pids()
    assert len(workers) == 2 and server.process.pid not in workers
    assert all(f"PPid:\t{server.process.pid}" in Path(f"/proc/{pid}/status").read_text() for pid in workers)
    assert all(20_000 < rss_kib(pid) < 2_000_000 for pid in workers)  # KiB: a Python with onnxruntime loaded


def test_the_servers_count_moves_by_the_requests_sent_and_not_by_its_own_scrape(server):
    before = server.requests_counted("/predict")
    statuses = [post(server) for _ in range(7)]
    assert statuses == [200] * 7
    assert server.requests_counted("/predict") == before + 7
    everything = server.requests_counted()
    assert server.requests_counted() == everything + 1  # the previous scrape, counted once answered
    assert server.requests_counted(status="5") == 0


def test_wrk_totals_agree_with_the_servers_count(server, tmp_path):
    if not shutil.which("wrk"):
        skip_or_fail("wrk is not installed (Debian's package)")
    body = tmp_path / "one.png"
    body.write_bytes(PNG)
    before = server.requests_counted("/predict")
    result = wrk.post_for(f"{server.url}/predict", body, "image/png", connections=4, seconds=1)
    counted = server.requests_counted("/predict") - before
    assert result["requests"] > 100 and result["errors"] == 0
    assert result["requests"] <= counted <= result["requests"] + 4  # + what was in flight when wrk stopped
    assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_a_slow_client_is_counted_and_the_timed_requests_are_timed(server):
    result = trickle_while_timing(server.url, PNG, connections=1, seconds=2, byte_every_s=0.5)
    assert result["slow_connections"] == 1 and result["timed_requests"] > 5
    assert result["answered"] == result["timed_requests"]  # one slow client holds at most one of two workers
    assert 0 < result["p50_ms"] <= result["p99_ms"] < 1000


def test_a_killed_worker_is_replaced_and_found(server):
    victim, survivor = server.worker_pids()
    os.kill(victim, signal.SIGKILL)
    server.wait_healthy(30, gone=victim)
    workers = server.worker_pids()
    assert victim not in workers and survivor in workers and len(workers) == 2
    assert post(server) == 200
