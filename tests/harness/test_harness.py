"""The harness the tests, benchmarks and `make reliability` stand on, against the real production server on
127.0.0.1 (2 workers): worker discovery, the server's own request count, RSS, wrk's totals, the slow-client
and worker-kill probes, keep-alive. Each would make the figures built on it wrong if it were."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from harness import wrk
from harness.images import GARMENTS, png
from harness.probes import keeps_alive, slow_clients_while_timing, worker_killed_under_load
from harness.server import ProductionServer, rss_kib

PNG = png(GARMENTS[0])


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
    assert server.requests_counted("/predict", method="GET") == 0
    everything = server.requests_counted()
    assert server.requests_counted() == everything + 1  # the previous scrape, counted once answered
    assert server.requests_counted(status="5") == 0


def test_wrk_totals_agree_with_the_servers_count(server, tmp_path, needs_wrk):
    body = tmp_path / "one.png"
    body.write_bytes(PNG)
    before = server.requests_counted("/predict")
    result = wrk.post_for(f"{server.url}/predict", body, "image/png", connections=4, seconds=1)
    counted = server.requests_counted("/predict") - before
    assert result["requests"] > 20 and result["errors"] == 0
    assert result["requests"] <= counted <= result["requests"] + 4  # + what was in flight when wrk stopped
    assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_wrk_without_a_server_is_a_clear_error_not_a_parse_failure(tmp_path, needs_wrk):
    body = tmp_path / "one.png"
    body.write_bytes(PNG)
    with pytest.raises(wrk.WrkFailed, match=r"no summary|no 50% latency"):
        wrk.post_for("http://127.0.0.1:9/predict", body, "image/png", connections=1, seconds=1)


def test_a_slow_client_is_counted_and_the_timed_requests_are_timed(server):
    result = slow_clients_while_timing(server.url, PNG, connections=1, seconds=2, byte_every_s=0.5)
    assert result["slow_connections"] == 1 and result["slow_connections_held_to_the_end"] == 1
    assert result["timed_requests"] > 5 and result["answered"] == result["timed_requests"]
    assert 0 < result["p50_ms"] <= result["p99_ms"] < 1000


def test_the_server_keeps_connections_alive(server):
    assert keeps_alive(server.url, PNG)


def test_a_worker_killed_under_load_is_replaced_and_found(server, tmp_path, needs_wrk):
    body = tmp_path / "one.png"
    body.write_bytes(PNG)
    before = server.worker_pids()
    found = worker_killed_under_load(server, body, "image/png", connections=4, seconds=3, kill_after_s=1)
    after = server.worker_pids()
    assert found["killed"] in before and found["killed"] not in after and len(after) == 2
    assert found["replaced"] and found["workers_before"] == before and found["workers_after"] == after
    assert found["wrk"]["requests"] > 0
    assert post(server) == 200
