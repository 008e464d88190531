"""The V2 routes with the ecosystem's own clients (tritonclient, KServe's SDK) over real HTTP to our server."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from tritonclient.utils import InferenceServerException

from harness.bad_requests import BAD_V2
from harness.images import encode, garment
from harness.openapi_check import check_http
from harness.reference import answered_probabilities
from harness.server import ProductionServer
from harness.v2_bodies import binary_body
from training.data import LABELS

MODEL = "fashion-softmax"
RNG = np.random.default_rng(5)
PIXELS = np.stack([garment(label, RNG) for label in range(10)] * 2)  # (20, 28, 28) uint8, light on black


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    with ProductionServer(model_dir, tmp_path_factory.mktemp("v2-server") / "server.log") as running:
        yield running.url


@pytest.fixture
def client(server):
    client = triton.InferenceServerClient(server.removeprefix("http://"))
    yield client
    client.close()


def native(url: str, pixels: np.ndarray) -> np.ndarray:
    """/predict's answer on the same pixels (pixel arrays as they are: no inversion)."""
    response = requests.post(f"{url}/predict?invert=false", json={"instances": pixels.tolist()}, timeout=10)
    assert response.status_code == 200, response.text
    check_http(response)
    return answered_probabilities(response.json())


def fp32(pixels: np.ndarray, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(pixels), 1, 28, 28], "FP32")
    tensor.set_data_from_numpy(pixels.astype(np.float32)[:, None], binary_data=binary)
    return tensor


def test_tritonclient_health_and_metadata(client, model_dir):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    version = str(json.loads((model_dir / "model.json").read_text())["model_repository"]["version"])
    assert client.is_model_ready(MODEL, version) and not client.is_model_ready(MODEL, "999")
    metadata = client.get_model_metadata(MODEL)
    assert metadata["versions"] == [version] and metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "novelty", "datatype": "FP32", "shape": [-1]},
        {"name": "in_distribution", "datatype": "BOOL", "shape": [-1]},
    ]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "classification", "model_repository"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_equals_predict(client, server, binary):
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(MODEL, [fp32(PIXELS, binary)], outputs=outputs, request_id="abc")
    assert result.get_response()["id"] == "abc"
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (20, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, native(server, PIXELS), atol=1e-6, rtol=0)
    # no outputs named: tritonclient asks for every output in binary
    np.testing.assert_array_equal(client.infer(MODEL, [fp32(PIXELS, binary)]).as_numpy("probabilities"), probabilities)


def test_tritonclient_classification_top3(client, server):
    outputs = [triton.InferRequestedOutput("probabilities", class_count=3)]
    top = client.infer(MODEL, [fp32(PIXELS[:10], True)], outputs=outputs).as_numpy("probabilities")
    assert top.shape == (10, 3)
    reference = native(server, PIXELS[:10])
    for label, row in enumerate(top):
        score, index, name = row[0].decode().split(":", 2)
        assert (int(index), name) == (label, LABELS[label]) and float(score) == pytest.approx(
            reference[label, label], abs=1e-6
        )
        assert [int(item.decode().split(":")[1]) for item in row] == np.argsort(-reference[label])[:3].tolist()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "base64-json"])
def test_tritonclient_image_bytes_png_batch(client, server, binary):
    pngs = [encode(pixels, "PNG") for pixels in PIXELS]
    elements = pngs if binary else [base64.b64encode(png) for png in pngs]
    tensor = triton.InferInput("image_bytes", [len(pngs)], "BYTES")
    tensor.set_data_from_numpy(np.array(elements, dtype=object), binary_data=binary)
    probabilities = client.infer(MODEL, [tensor]).as_numpy("probabilities")
    files = [("image", (f"{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
    response = requests.post(f"{server}/predict", files=files, timeout=10)
    np.testing.assert_allclose(probabilities, answered_probabilities(response.json()), atol=1e-6, rtol=0)


def test_tritonclient_sees_our_error_message(client):
    wrong = triton.InferInput("image", [1, 784], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 784), dtype=np.float32))
    with pytest.raises(InferenceServerException) as raised:
        client.infer(MODEL, [wrong])
    assert raised.value.status() == "400"
    assert "must have shape [-1, 1, 28, 28], not [1, 784]" in raised.value.message()
    with pytest.raises(InferenceServerException, match="unknown model 'mnist'") as raised:
        client.get_model_metadata("mnist")
    assert raised.value.status() == "404"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_kserve_client_live_ready_infer(server, binary):
    async def run():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10))
        try:
            tensor = InferInput("image", [5, 1, 28, 28], "FP32")
            tensor.set_data_from_numpy(PIXELS[:5].astype(np.float32)[:, None], binary_data=binary)
            request = InferRequest(MODEL, [tensor], request_id="k-1")
            flags = [await client.is_server_live(server), await client.is_server_ready(server),
                     await client.is_model_ready(server, MODEL)]  # fmt: skip
            return flags, await client.infer(server, request, model_name=MODEL)
        finally:
            await client.close()

    flags, response = asyncio.run(run())
    assert flags == [True, True, True]
    assert response.id == "k-1" and response.model_name == MODEL
    np.testing.assert_allclose(response.outputs[0].as_numpy(), native(server, PIXELS[:5]), atol=1e-6, rtol=0)


def test_bad_v2_requests_over_http_get_4xx_and_never_5xx(server):
    session = requests.Session()
    for name, (method, path, body, headers, status, words) in BAD_V2.items():
        if name.startswith("too-"):
            continue  # the test-client app's limits are smaller; the real ones follow
        response = session.request(method, f"{server}{path}", data=body, headers=headers, timeout=10)
        assert response.status_code == status, (name, response.text)
        check_http(response)
        assert words.lower() in response.json()["error"].lower(), name
    assert requests.get(f"{server}/v2/models/{MODEL}", timeout=5).status_code == 200  # still answering
    zeros = np.zeros((257, 1, 28, 28), dtype="<f4")  # one past the artifact's batch limit of 256
    tensor = {"name": "image", "datatype": "FP32", "shape": list(zeros.shape),
              "parameters": {"binary_data_size": zeros.nbytes}}  # fmt: skip
    body, headers = binary_body({"inputs": [tensor]}, [zeros.tobytes()])
    response = session.post(f"{server}/v2/models/{MODEL}/infer", data=body, headers=headers, timeout=10)
    assert response.status_code == 413 and "the limit is 256" in response.json()["error"]
    check_http(response)
    response = session.post(f"{server}/v2/models/{MODEL}/infer", data=b" " * (11 * 1024 * 1024), timeout=10)
    assert response.status_code == 413 and isinstance(response.json()["error"], str)


def test_real_responses_match_the_openapi_document(server, model_dir):
    version = json.loads((model_dir / "model.json").read_text())["model_repository"]["version"]
    paths = ["/health", "/ready", "/metadata", "/metrics", "/openapi.json", "/v2", "/v2/health/live",
             "/v2/health/ready", f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/ready",
             f"/v2/models/{MODEL}/versions/{version}", f"/v2/models/{MODEL}/versions/{version}/ready"]  # fmt: skip
    for path in paths:
        response = requests.get(f"{server}{path}", timeout=10)
        assert response.status_code == 200, path
        check_http(response)
    raw = PIXELS.astype("<f4").tobytes()
    body, headers = binary_body({"inputs": [{"name": "image", "datatype": "FP32", "shape": [20, 1, 28, 28],
                                             "parameters": {"binary_data_size": len(raw)}}],
                                 "parameters": {"binary_data_output": True}}, [raw])  # fmt: skip
    response = requests.post(f"{server}/v2/models/{MODEL}/versions/{version}/infer", data=body, headers=headers,
                             timeout=10)  # fmt: skip
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/octet-stream"
    check_http(response)
