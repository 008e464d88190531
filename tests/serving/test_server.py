"""End to end: the production server (Granian, `python -m serving`) on 127.0.0.1 serving a model trained
on the real Fashion-MNIST, over real HTTP."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import requests
from PIL import Image

from tests.helpers import encode
from tests.serving.live_server import ROOT, free_port, start_server, stop, wait_until_ready, worker_pids
from tests.serving.test_api import BAD_REQUESTS

pytestmark = pytest.mark.dataset


@pytest.fixture(scope="module")
def real_model(real_run):
    """(artifacts folder, 32 real test images) after 2 epochs of the book's recipe on the real data."""
    assert real_run.finished.returncode == 0, real_run.finished.stderr
    return real_run.out_dir, real_run.test.images[:32].numpy()


@pytest.fixture(scope="module")
def server(real_model, tmp_path_factory):
    """The production server (2 workers) around the real model: (url, process, log)."""
    model_dir, _ = real_model
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = start_server(model_dir, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, log)
        yield url, process, log
    finally:
        stop(process)


def reference(model_dir: Path, images: list[bytes]) -> np.ndarray:
    """The model's own probabilities on the pixels these files decode to."""
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32) for data in images])
    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": pixels[:, None]})[0]


def probabilities(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([list(p["probabilities"].values()) for p in response.json()["predictions"]])


def test_raw_multipart_and_json_agree_with_the_model(server, real_model):
    url, _, _ = server
    model_dir, images = real_model
    pngs = [encode(image, "PNG") for image in images[:8]]
    jpegs = [encode(image, "JPEG", quality=90) for image in images[8:16]]

    for data, content_type in ((pngs[0], "image/png"), (jpegs[0], "image/jpeg")):
        response = requests.post(f"{url}/predict", data=data, headers={"Content-Type": content_type}, timeout=10)
        np.testing.assert_allclose(probabilities(response), reference(model_dir, [data]), atol=1e-5)

    files = [("image", (f"{i}.png", data, "image/png")) for i, data in enumerate(pngs)]
    files += [("photo", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(jpegs)]
    response = requests.post(f"{url}/predict", files=files, timeout=10)
    np.testing.assert_allclose(probabilities(response), reference(model_dir, pngs + jpegs), atol=1e-5)

    instances = [{"b64": base64.b64encode(data).decode()} for data in pngs[:4]] + [images[20].tolist()]
    response = requests.post(f"{url}/predict", json={"instances": instances}, timeout=10)
    expected = np.concatenate([reference(model_dir, pngs[:4]), reference(model_dir, [encode(images[20], "PNG")])])
    np.testing.assert_allclose(probabilities(response), expected, atol=1e-5)


def test_bad_requests_get_4xx_and_no_worker_dies(server):
    url, process, log = server
    workers = worker_pids(process.pid)
    assert len(workers) == 2
    for name, (method, path, body, content_type, status, code) in BAD_REQUESTS.items():
        if name == "image-too-many-pixels":
            continue  # the test-client app has a lower pixel limit than the server's default
        headers = {"Content-Type": content_type} if content_type else {}
        response = requests.request(method, f"{url}{path}", data=body, headers=headers, timeout=10)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), name
    assert requests.get(f"{url}/health", timeout=5).status_code == 200
    assert process.poll() is None
    assert worker_pids(process.pid) == workers  # no worker was lost and replaced
    assert "Respawning" not in log.read_text()


def test_metrics_add_up_over_workers(server, real_model):
    url, _, _ = server
    _, images = real_model
    data = encode(images[0], "PNG")

    def predicted() -> float:
        text = requests.get(f"{url}/metrics", timeout=5).text
        (line,) = [line for line in text.splitlines() if line.startswith("fashion_softmax_images_predicted_total")]
        return float(line.split()[-1])

    before = predicted()
    session = requests.Session()
    for _ in range(40):  # spread over both workers
        session.post(f"{url}/predict", data=data, headers={"Content-Type": "image/png"}, timeout=5)
    assert predicted() - before == 40
    assert requests.get(f"{url}/ready", timeout=5).json()["status"] == "ready"


def test_startup_without_a_model_fails_in_one_line(tmp_path):
    process = start_server(tmp_path / "empty", free_port(), tmp_path / "log")
    assert process.wait(timeout=60) != 0
    output = (tmp_path / "log").read_text()
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "cannot start" in line]
    assert str(tmp_path / "empty" / "model.json") in line and "make train-export" in line


def test_the_launcher_leaves_prometheus_client_unimported():
    """prometheus_client fixes its sample store when first imported: the server's main process must not
    import it before choosing PROMETHEUS_MULTIPROC_DIR, or the workers would count in private memory."""
    check = "import sys, serving.server; print(any(m.startswith('prometheus_client') for m in sys.modules))"
    finished = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT)
    assert finished.stdout.strip() == "False"
