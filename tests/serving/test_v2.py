"""The Open Inference Protocol routes through Flask's test client: metadata, JSON and binary tensors, errors."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from harness.bad_requests import BAD_V2
from harness.images import encode, garment
from harness.reference import answered_probabilities, model_outputs, model_probabilities
from harness.v2_bodies import INFER, binary_body, bytes_elements
from serving import ModelLoadError, create_app
from serving.v2_codec import decode_input, encode_output, encode_response, split_body
from training.data import LABELS

RNG = np.random.default_rng(11)
PIXELS = np.stack([garment(label, RNG) for label in (3, 7, 0, 9)])  # (4, 28, 28) uint8, light on black


def native(client, pixels: np.ndarray) -> np.ndarray:
    """/predict's probabilities for these pixel arrays (no inversion: they are the model input as is)."""
    response = client.post("/predict?invert=false", json={"instances": pixels.tolist()})
    assert response.status_code == 200, response.get_data(as_text=True)
    return answered_probabilities(response.get_json())


def fp32_input(pixels: np.ndarray, nested: bool = False) -> dict:
    data = pixels.astype(np.float32).reshape(-1, 1, 28, 28)
    return {"name": "image", "datatype": "FP32", "shape": list(data.shape),
            "data": data.tolist() if nested else data.ravel().tolist()}  # fmt: skip


def outputs(response) -> dict:
    """A V2 response's outputs by name, as arrays, JSON or binary."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data()
    length = response.headers.get("Inference-Header-Content-Length")
    header, binary = split_body(body, length)
    found, offset = {}, 0
    for tensor in header["outputs"]:
        decoded, offset = decode_input(tensor, binary, offset)
        found[tensor["name"]] = decoded.array
    return found


def test_server_and_model_metadata(client, model_dir):
    assert client.get("/v2").get_json() == {
        "name": "fashion-softmax", "version": "0.1.0",
        "extensions": ["binary_tensor_data", "classification", "model_repository"],
    }  # fmt: skip
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    manifest = json.loads((model_dir / "model.json").read_text())
    version = str(manifest["model_repository"]["version"])
    expected = {
        "name": "fashion-softmax",
        "versions": [version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
            {"name": "novelty", "datatype": "FP32", "shape": [-1]},
            {"name": "in_distribution", "datatype": "BOOL", "shape": [-1]},
        ],
    }
    assert client.get("/v2/models/fashion-softmax").get_json() == expected
    assert client.get(f"/v2/models/fashion-softmax/versions/{version}").get_json() == expected
    assert client.get("/v2/models/fashion-softmax/ready").get_json() == {"name": "fashion-softmax", "ready": True}
    assert client.get(f"/v2/models/fashion-softmax/versions/{version}/ready").status_code == 200


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_json_fp32_equals_predict(client, nested):
    response = client.post(INFER, json={"id": "r-1", "inputs": [fp32_input(PIXELS, nested)]})
    body = response.get_json()
    assert response.mimetype == "application/json" and "Inference-Header-Content-Length" not in response.headers
    assert body["id"] == "r-1" and body["model_name"] == "fashion-softmax"
    output, novelty, flags = body["outputs"]  # every output when none is asked for
    assert (output["name"], output["datatype"], output["shape"]) == ("probabilities", "FP32", [4, 10])
    assert (novelty["name"], novelty["datatype"], novelty["shape"]) == ("novelty", "FP32", [4])
    assert (flags["name"], flags["datatype"], flags["shape"]) == ("in_distribution", "BOOL", [4])
    assert flags["data"] == [True] * 4  # garments of the small model's kind
    probabilities = np.array(output["data"]).reshape(4, 10)
    np.testing.assert_allclose(probabilities, native(client, PIXELS), atol=1e-6, rtol=0)
    assert probabilities.argmax(1).tolist() == [3, 7, 0, 9]


def test_uint8_pixels_and_no_content_type(client):
    header = {
        "inputs": [{"name": "image", "datatype": "UINT8", "shape": [4, 1, 28, 28], "data": PIXELS.ravel().tolist()}]
    }
    response = client.post(INFER, data=json.dumps(header), content_type=None)  # tritonclient sends none
    np.testing.assert_allclose(outputs(response)["probabilities"], native(client, PIXELS), atol=1e-6, rtol=0)


def test_binary_tensors_both_ways(client):
    pixels = PIXELS.astype("<f4").reshape(4, 1, 28, 28)
    tensor = {"name": "image", "datatype": "FP32", "shape": [4, 1, 28, 28],
              "parameters": {"binary_data_size": pixels.nbytes}}  # fmt: skip
    body, headers = binary_body({"inputs": [tensor], "parameters": {"binary_data_output": True}}, [pixels.tobytes()])
    response = client.post(INFER, data=body, headers=headers, content_type="application/octet-stream")
    assert response.headers["Content-Type"] == "application/octet-stream"
    header = json.loads(response.get_data()[: int(response.headers["Inference-Header-Content-Length"])])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 4 * 10 * 4}
    np.testing.assert_allclose(outputs(response)["probabilities"], native(client, PIXELS), atol=1e-6, rtol=0)

    # per output: binary_data false wins over the request's binary_data_output
    requested = [{"name": "probabilities", "parameters": {"binary_data": False}}]
    body, headers = binary_body({"inputs": [tensor], "outputs": requested, "parameters": {"binary_data_output": True}},
                                [pixels.tobytes()])  # fmt: skip
    response = client.post(INFER, data=body, headers=headers)
    assert response.mimetype == "application/json" and len(response.get_json()["outputs"][0]["data"]) == 40


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_the_novelty_outputs_equal_the_model_and_predict(client, model_dir, binary):
    """Garments and noise: novelty and in_distribution as model.onnx computes them, and as /predict says them."""
    noise = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    pixels = np.concatenate([PIXELS, noise])
    requested = [{"name": name, "parameters": {"binary_data": binary}} for name in ("in_distribution", "novelty")]
    found = outputs(client.post(INFER, json={"inputs": [fp32_input(pixels)], "outputs": requested}))
    assert list(found) == ["in_distribution", "novelty"]  # only those asked for, in the order asked
    expected = model_outputs(model_dir, pixels)
    assert found["in_distribution"].dtype == bool and found["in_distribution"].tolist() == [True] * 4 + [False] * 2
    np.testing.assert_array_equal(found["in_distribution"], expected["in_distribution"])
    np.testing.assert_allclose(found["novelty"], expected["novelty"], rtol=1e-6)
    native_answer = client.post("/predict?invert=false", json={"instances": pixels.tolist()}).get_json()
    assert [p["in_distribution"] for p in native_answer["predictions"]] == found["in_distribution"].tolist()
    np.testing.assert_allclose([p["novelty"] for p in native_answer["predictions"]], found["novelty"], rtol=1e-5)


@pytest.mark.parametrize("name", ["novelty", "in_distribution"])
def test_classification_of_a_novelty_output_is_refused(client, name):
    requested = [{"name": name, "parameters": {"classification": 1}}]
    response = client.post(INFER, json={"inputs": [fp32_input(PIXELS)], "outputs": requested})
    assert response.status_code == 400 and "probabilities" in response.get_json()["error"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_classification_is_tritons_top_k(client, model_dir, binary):
    requested = [{"name": "probabilities", "parameters": {"classification": 3, "binary_data": binary}}]
    response = client.post(INFER, json={"inputs": [fp32_input(PIXELS)], "outputs": requested})
    top = outputs(response)["probabilities"]
    assert top.shape == (4, 3)
    reference = model_probabilities(model_dir, PIXELS)  # float32, unrounded: the strings must match exactly
    for row, expected in zip(top, reference, strict=True):
        ids = np.argsort(-expected, kind="stable")[:3]
        strings = [item.decode() if isinstance(item, bytes) else item for item in row]
        assert strings == [f"{expected[i]:f}:{i}:{LABELS[i]}" for i in ids]  # printf %f, as std::to_string


@pytest.mark.parametrize("binary", [False, True], ids=["base64-json", "binary"])
def test_image_bytes_go_through_predicts_preprocessing(client, binary):
    pngs = [encode(pixels, "PNG") for pixels in PIXELS] + [encode(255 - PIXELS[1], "JPEG", quality=95)]
    if binary:
        raw = bytes_elements(pngs)
        tensor = {
            "name": "image_bytes",
            "datatype": "BYTES",
            "shape": [5],
            "parameters": {"binary_data_size": len(raw)},
        }
        body, headers = binary_body({"inputs": [tensor]}, [raw])
        response = client.post(INFER, data=body, headers=headers)
    else:
        data = [base64.b64encode(png).decode() for png in pngs]
        response = client.post(INFER, json={"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [5],
                                                        "data": data}]})  # fmt: skip
    expected = client.post("/predict", data={"image": [(io.BytesIO(data), f"{i}.img") for i, data in enumerate(pngs)]})
    assert expected.status_code == 200
    expected = answered_probabilities(expected.get_json())
    np.testing.assert_allclose(outputs(response)["probabilities"], expected, atol=1e-6, rtol=0)


def test_versions_are_the_repositorys(client, model_dir):
    version = json.loads((model_dir / "model.json").read_text())["model_repository"]["version"]
    path = f"/v2/models/fashion-softmax/versions/{version}/infer"
    body = client.post(path, json={"inputs": [fp32_input(PIXELS[:1])]}).get_json()
    assert body["model_version"] == str(version)
    for other in (version + 1, 0, "latest"):
        response = client.get(f"/v2/models/fashion-softmax/versions/{other}")
        assert response.status_code == 404 and isinstance(response.get_json()["error"], str)


@pytest.fixture
def strict_client(model_dir):
    """Small limits, so the too-large cases stay small."""
    config = {"MODEL_DIR": str(model_dir), "MAX_BATCH": 2, "MAX_CONTENT_LENGTH": 64 * 1024}
    return create_app(config).test_client()


@pytest.mark.parametrize("case", list(BAD_V2.values()), ids=list(BAD_V2))
def test_bad_v2_requests_get_a_4xx_with_a_string_error(strict_client, case):
    method, path, body, headers, status, words = case
    response = strict_client.open(path, method=method, data=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert isinstance(error, str) and words.lower() in error.lower(), error
    ok = strict_client.post(INFER, json={"inputs": [fp32_input(PIXELS[:1])]})
    assert ok.status_code == 200  # and the app still answers


def test_predict_keeps_its_own_error_format(client):
    error = client.get("/nowhere").get_json()["error"]
    assert set(error) == {"code", "message"}
    assert isinstance(client.get("/v2/nowhere").get_json()["error"], str)


def test_an_export_without_the_batch_limit_is_refused(copy_model):
    manifest = json.loads((copy_model / "model.json").read_text())
    del manifest["serving"]
    (copy_model / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"no serving\.max_batch .*make train-export"):
        create_app({"MODEL_DIR": str(copy_model)})


def test_the_batch_limit_is_the_artifacts_unless_configured(model_dir, monkeypatch):
    limit = json.loads((model_dir / "model.json").read_text())["serving"]["max_batch"]

    def too_large(client, count: int) -> str:
        images = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [count, 1, 28, 28],
                              "data": [0.0] * (count * 784)}]}  # fmt: skip
        response = client.post(INFER, json=images)
        assert response.status_code == 413
        accepted = client.post(INFER, json={"inputs": [{**images["inputs"][0], "shape": [1, 1, 28, 28],
                                                        "data": [0.0] * 784}]})  # fmt: skip
        assert accepted.status_code == 200
        return response.get_json()["error"]

    assert f"the limit is {limit}" in too_large(create_app({"MODEL_DIR": str(model_dir)}).test_client(), limit + 1)
    monkeypatch.setenv("FASHION_SOFTMAX_MAX_BATCH", "3")
    assert "the limit is 3" in too_large(create_app({"MODEL_DIR": str(model_dir)}).test_client(), 4)


def test_v2_without_a_model_is_not_ready(tmp_path):
    client = create_app({"MODEL_DIR": str(tmp_path), "MODEL_REQUIRED": False}).test_client()
    assert client.get("/v2/health/live").status_code == 200
    for path in ("/v2/health/ready", "/v2/models/fashion-softmax/ready"):
        response = client.get(path)
        assert response.status_code == 503 and "no model loaded" in response.get_json()["error"]


@pytest.mark.parametrize("datatype", ["FP32", "UINT8", "INT64", "FP16", "BOOL", "BYTES"])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_codec_round_trips(datatype, binary):
    values = {"BYTES": np.array([[b"a", b"\x00\xff"], [b"", b"png"]], dtype=object),
              "BOOL": np.array([[True, False], [False, True]])}  # fmt: skip
    array = values.get(datatype, np.array([[0, 1], [200, 7]]).astype(
        {"FP32": "<f4", "UINT8": "u1", "INT64": "<i8", "FP16": "<f2"}.get(datatype)))  # fmt: skip
    if datatype == "BYTES" and not binary:
        array = np.array([[b"a", b"b"], [b"", b"png"]], dtype=object)  # JSON BYTES are UTF-8 strings
    tensor, raw = encode_output("t", datatype, array, binary)
    body, headers = encode_response({"outputs": [tensor]}, [raw] if raw is not None else [])
    header, rest = split_body(body, headers.get("Inference-Header-Content-Length"))
    decoded, end = decode_input(header["outputs"][0], rest, 0)
    assert decoded.shape == (2, 2) and end == len(rest)
    assert decoded.array.tolist() == array.tolist() and decoded.array.dtype == array.dtype
