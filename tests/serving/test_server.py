"""End to end: the production server (Granian, `python -m serving`) on 127.0.0.1 serving a model trained
on the real Fashion-MNIST, over real HTTP."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from harness import ROOT
from harness.bad_requests import BAD_REQUESTS
from harness.images import encode, png
from harness.reference import answered_probabilities, decoded, model_probabilities
from harness.server import ProductionServer, ServerExited, metric_samples

pytestmark = pytest.mark.dataset


@pytest.fixture(scope="module")
def real_model(real_run):
    """(artifacts folder, 32 real test images) after 2 epochs of the book's recipe on the real data."""
    assert real_run.finished.returncode == 0, real_run.finished.stderr
    return real_run.out_dir, real_run.test.images[:32].numpy()


@pytest.fixture(scope="module")
def server(real_model, tmp_path_factory):
    """The production server (2 workers) around the real model."""
    model_dir, _ = real_model
    with ProductionServer(model_dir, tmp_path_factory.mktemp("server") / "server.log") as running:
        yield running


def probabilities(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return answered_probabilities(response.json())


def test_raw_multipart_and_json_agree_with_the_model(server, real_model):
    url = server.url
    model_dir, images = real_model
    pngs = [png(image) for image in images[:8]]
    jpegs = [encode(image, "JPEG", quality=90) for image in images[8:16]]

    for data, content_type in ((pngs[0], "image/png"), (jpegs[0], "image/jpeg")):
        response = requests.post(f"{url}/predict", data=data, headers={"Content-Type": content_type}, timeout=10)
        np.testing.assert_allclose(probabilities(response), model_probabilities(model_dir, decoded([data])), atol=1e-5)

    files = [("image", (f"{i}.png", data, "image/png")) for i, data in enumerate(pngs)]
    files += [("photo", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(jpegs)]
    response = requests.post(f"{url}/predict", files=files, timeout=10)
    expected = model_probabilities(model_dir, decoded(pngs + jpegs))
    np.testing.assert_allclose(probabilities(response), expected, atol=1e-5)

    instances = [{"b64": base64.b64encode(data).decode()} for data in pngs[:4]] + [images[20].tolist()]
    response = requests.post(f"{url}/predict", json={"instances": instances}, timeout=10)
    expected = model_probabilities(model_dir, np.concatenate([decoded(pngs[:4]), images[20:21]]))
    np.testing.assert_allclose(probabilities(response), expected, atol=1e-5)


def test_bad_requests_get_4xx_and_no_worker_dies(server):
    workers = server.worker_pids()
    assert len(workers) == 2
    for name, (method, path, body, content_type, status, code) in BAD_REQUESTS.items():
        if name == "image-too-many-pixels":
            continue  # the test-client app has a lower pixel limit than the server's default
        headers = {"Content-Type": content_type} if content_type else {}
        response = requests.request(method, f"{server.url}{path}", data=body, headers=headers, timeout=10)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), name
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    assert server.alive()
    assert server.worker_pids() == workers  # no worker was lost and replaced
    assert "Respawning" not in server.log_text()


def images_predicted(url: str) -> float:
    return sum(value for _, value in metric_samples(url, "fashion_softmax_images_predicted"))


def post_on_a_new_connection(url: str, data: bytes, request_id: str) -> int:
    """One request on a connection of its own (closed after the answer), named by its X-Request-ID."""
    headers = {"Content-Type": "image/png", "X-Request-ID": request_id, "Connection": "close"}
    with requests.Session() as session:
        return session.post(f"{url}/predict", data=data, headers=headers, timeout=10).status_code


def test_posts_on_separate_connections_reach_both_workers_and_metrics_add_them_up(server, real_model):
    _, images = real_model
    data = png(images[0])
    workers = set(server.worker_pids())
    before = images_predicted(server.url)
    answered_by: dict[str, int] = {}  # request id -> pid of the worker that logged it
    run = f"spread-{time.time_ns()}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        while set(answered_by.values()) != workers and len(answered_by) < 400:  # 8 connections at a time
            batch = [f"{run}-{len(answered_by) + i}" for i in range(8)]
            statuses = list(pool.map(lambda request_id: post_on_a_new_connection(server.url, data, request_id), batch))
            assert statuses == [200] * 8
            for request_id in batch:
                logged = server.wait_for_log(rf"request {request_id}: POST /predict -> 200 \(worker (\d+)\)")
                answered_by[request_id] = int(logged.group(1))
    assert set(answered_by.values()) == workers, f"{len(answered_by)} requests, all answered by one worker"
    assert images_predicted(server.url) - before == len(answered_by)  # /metrics adds up both workers' counts
    assert requests.get(f"{server.url}/ready", timeout=5).json()["status"] == "ready"


def test_a_graceful_stop_writes_the_counts_each_worker_gathered(real_model, tmp_path):
    """Workers write their counts every FLUSH_EVERY_S; the ones gathered since are written as a worker stops."""
    model_dir, images = real_model
    folder = tmp_path / "metrics"
    folder.mkdir()
    with ProductionServer(model_dir, tmp_path / "server.log", metrics_dir=folder) as server, requests.Session() as s:
        for _ in range(40):  # in well under a second: the last ones are still gathered when the stop comes
            assert s.post(f"{server.url}/predict", data=png(images[0]), headers={"Content-Type": "image/png"}).ok
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    predicted = [s.value for family in registry.collect() if family.name == "fashion_softmax_images_predicted"
                 for s in family.samples if s.name.endswith("_total")]  # fmt: skip
    assert sum(predicted) == 40


def test_startup_without_a_model_fails_in_one_line(tmp_path):
    with pytest.raises(ServerExited) as exited, ProductionServer(tmp_path / "empty", tmp_path / "log"):
        pass
    assert exited.value.returncode != 0
    assert "Traceback" not in exited.value.output
    (line,) = [line for line in exited.value.output.splitlines() if "cannot start" in line]
    assert str(tmp_path / "empty" / "model.json") in line and "make train-export" in line


def test_the_launcher_leaves_prometheus_client_unimported():
    """prometheus_client fixes its sample store when first imported: the server's main process must not
    import it before choosing PROMETHEUS_MULTIPROC_DIR, or the workers would count in private memory."""
    check = "import sys, serving.server; print(any(m.startswith('prometheus_client') for m in sys.modules))"
    finished = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT)
    assert finished.stdout.strip() == "False"
