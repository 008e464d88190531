"""bench/bench_serve.py's candidates, each started as `make bench-serve` starts it: every one serves the model
(a gunicorn config that broke at start-up would otherwise surface only in a benchmark run)."""

from __future__ import annotations

import pytest
import requests

from bench.bench_serve import SERVERS
from harness.images import GARMENTS, png
from harness.server import ProductionServer, ServerExited


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_every_candidate_starts_and_answers(name, model_dir, tmp_path):
    command, settings = SERVERS[name]
    with ProductionServer(model_dir, tmp_path / "server.log", command=command, **settings) as server:
        response = requests.post(f"{server.url}/predict", data=png(GARMENTS[3]), timeout=10,
                                 headers={"Content-Type": "image/png"})  # fmt: skip
    assert response.status_code == 200 and response.json()["predictions"][0]["label"] == "Dress"


@pytest.mark.parametrize("name", ["gunicorn_sync", "granian"])
def test_every_candidate_refuses_to_start_without_a_model_in_one_line(name, tmp_path):
    command, settings = SERVERS[name]
    with pytest.raises(ServerExited) as exited, ProductionServer(tmp_path / "empty", tmp_path / "log", command=command,
                                                                 start_s=60, **settings):  # fmt: skip
        pass
    assert "cannot start" in exited.value.output and "Traceback" not in exited.value.output
