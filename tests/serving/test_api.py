"""The routes through Flask's test client, around a small model exported in tmp_path."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from harness.bad_requests import BAD_REQUESTS, SMALL
from harness.images import GARMENTS, from_data_url, multipart, png
from harness.reference import model_outputs, model_probabilities
from serving import ModelLoadError, create_app
from training.data import LABELS


def test_raw_png_gets_the_documented_response(client, model_dir):
    response = client.post("/predict", data=png(GARMENTS[3]), content_type="image/png")
    assert response.status_code == 200
    body = response.get_json()
    manifest = json.loads((model_dir / "model.json").read_text())
    threshold = float(f"{manifest['novelty']['threshold']:.6g}")  # the float32 threshold's significant digits
    assert body["model"] == {"name": "fashion-softmax", "version": manifest["version"], "repository_version": 1,
                             "novelty_threshold": threshold}  # fmt: skip
    (prediction,) = body["predictions"]
    assert list(prediction) == ["label", "class_id", "probability", "in_distribution", "novelty", "probabilities"]
    expected = model_outputs(model_dir, GARMENTS[3])
    assert prediction["in_distribution"] is True and prediction["novelty"] <= threshold
    assert prediction["novelty"] == pytest.approx(float(expected["novelty"][0]), rel=1e-5)
    assert list(prediction["probabilities"]) == list(LABELS)  # every label, in class-id order
    assert prediction["class_id"] == 3 and prediction["label"] == "Dress"
    assert prediction["probability"] == max(prediction["probabilities"].values())
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    expected = model_probabilities(model_dir, GARMENTS[3])[0]
    np.testing.assert_allclose(list(prediction["probabilities"].values()), expected, atol=1e-6)


def test_multipart_files_under_any_names_come_back_in_the_order_sent(client):
    order = [7, 2, 9, 2, 0]
    # interleaved field names (a, b, a, b, a): Werkzeug's request.files would group them by name
    body, content_type = multipart([(f"field{i % 2}", f"{i}.png", png(GARMENTS[k])) for i, k in enumerate(order)])
    response = client.post("/predict", data=body, content_type=content_type)
    assert response.status_code == 200
    assert [p["class_id"] for p in response.get_json()["predictions"]] == order


def test_multipart_from_the_test_client(client):
    response = client.post("/predict", data={"image": (io.BytesIO(png(GARMENTS[5])), "shoe.png")})
    assert response.status_code == 200 and response.get_json()["predictions"][0]["class_id"] == 5


def test_json_base64_and_pixel_arrays(client):
    instances = [
        {"b64": base64.b64encode(png(GARMENTS[1])).decode()},
        GARMENTS[4].tolist(),
        GARMENTS[8].reshape(-1).tolist(),
    ]
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 200
    assert [p["class_id"] for p in response.get_json()["predictions"]] == [1, 4, 8]


def test_json_without_content_type_is_read(client):
    body = json.dumps({"instances": [GARMENTS[6].tolist()]})
    response = client.post("/predict", data=body, content_type="")
    assert response.status_code == 200 and response.get_json()["predictions"][0]["class_id"] == 6
    # curl --data-binary without -H sends application/x-www-form-urlencoded
    response = client.post("/predict", data=png(GARMENTS[6]), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and response.get_json()["predictions"][0]["class_id"] == 6


def test_invert_parameter(client, model_dir):
    photo = 255 - GARMENTS[2]
    auto = client.post("/predict", data=png(photo), content_type="image/png").get_json()["predictions"][0]
    assert auto["class_id"] == 2
    kept = client.post("/predict?invert=false", data=png(photo), content_type="image/png").get_json()
    expected = model_probabilities(model_dir, photo)[0]
    np.testing.assert_allclose(list(kept["predictions"][0]["probabilities"].values()), expected, atol=1e-6)


def test_return_input_answers_the_image_the_model_saw(client):
    photo = 255 - GARMENTS[5]  # dark garment on white: the model sees it inverted, light on black
    body, content_type = multipart([("a", "a.png", png(GARMENTS[3])), ("b", "b.png", png(photo))])
    response = client.post("/predict?return_input=true", data=body, content_type=content_type)
    assert response.status_code == 200
    first, second = response.get_json()["predictions"]
    for prediction, expected in ((first, GARMENTS[3]), (second, GARMENTS[5])):
        image = from_data_url(prediction["input_png"])
        assert (image.mode, image.size) == ("L", (28, 28))
        np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("query", ["", "?return_input=false", "?return_input=0", "?invert=auto"])
def test_the_input_is_not_returned_unless_asked(client, query):
    response = client.post(f"/predict{query}", data=png(GARMENTS[3]), content_type="image/png")
    assert response.status_code == 200
    assert "input_png" not in response.get_json()["predictions"][0]


def test_health_ready_metadata(client, model_dir):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    metadata = client.get("/metadata").get_json()
    manifest = json.loads((model_dir / "model.json").read_text())
    assert metadata["labels"] == list(LABELS) and metadata["version"] == manifest["version"]
    assert metadata["sha256"] == manifest["sha256"] and metadata["metrics"] == manifest["metrics"]
    assert metadata["input"]["shape"] == ["N", 1, 28, 28] and metadata["input"]["range"] == [0.0, 255.0]


def test_metrics_count_requests_statuses_and_images(client):
    client.post("/predict", data=png(GARMENTS[0]), content_type="image/png")
    client.post("/predict", json={"instances": [GARMENTS[1].tolist(), GARMENTS[2].tolist()]})
    client.post("/predict", data=b"junk", content_type="text/plain")
    client.get("/nowhere")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fashion_softmax_http_requests_total{method="POST",route="/predict",status="200"} 2.0' in text
    assert 'fashion_softmax_http_requests_total{method="POST",route="/predict",status="415"} 1.0' in text
    assert 'fashion_softmax_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'fashion_softmax_images_predicted_total{version="1"} 3.0' in text
    assert 'fashion_softmax_http_request_duration_seconds_count{route="/predict"} 3.0' in text


def test_without_a_model_startup_fails_with_the_path_and_the_remedy(tmp_path):
    with pytest.raises(ModelLoadError, match="make train-export") as caught:
        create_app({"MODEL_DIR": str(tmp_path)})
    assert str(tmp_path / "model.json") in str(caught.value)


def test_a_model_that_does_not_match_its_manifest_is_refused(copy_model):
    with open(copy_model / "model.onnx", "ab") as model:
        model.write(b"tampered")
    with pytest.raises(ModelLoadError, match="sha256"):
        create_app({"MODEL_DIR": str(copy_model)})


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]"])
def test_a_corrupt_manifest_is_refused(copy_model, content):
    (copy_model / "model.json").write_text(content)
    with pytest.raises(ModelLoadError, match="cannot read the model"):
        create_app({"MODEL_DIR": str(copy_model)})


def test_a_corrupt_model_is_refused(copy_model):
    manifest = json.loads((copy_model / "model.json").read_text())
    garbage = b"not an onnx file"
    (copy_model / "model.onnx").write_bytes(garbage)
    manifest["sha256"] = __import__("hashlib").sha256(garbage).hexdigest()
    (copy_model / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="not a usable model"):
        create_app({"MODEL_DIR": str(copy_model)})


def test_not_ready_without_a_model_when_allowed(tmp_path):
    client = create_app({"MODEL_DIR": str(tmp_path), "MODEL_REQUIRED": False}).test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and "make train-export" in ready.get_json()["reason"]
    response = client.post("/predict", data=png(GARMENTS[0]), content_type="image/png")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "model_not_loaded"


@pytest.fixture
def strict_client(model_dir):
    """The app with a pixel limit of 1 megapixel, so the oversized-image case stays small."""
    return create_app({"MODEL_DIR": str(model_dir), "MAX_IMAGE_PIXELS": 1_000_000}).test_client()


@pytest.mark.parametrize("case", list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS))
def test_bad_requests_get_a_json_4xx(strict_client, case):
    method, path, body, content_type, status, code = case
    response = strict_client.open(path, method=method, data=body, content_type=content_type)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    # and the app still answers afterwards
    assert strict_client.post("/predict", data=SMALL, content_type="image/png").status_code == 200


def test_limits_come_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("FASHION_SOFTMAX_MAX_BATCH", "2")
    monkeypatch.setenv("FASHION_SOFTMAX_MODEL_DIR", str(model_dir))
    client = create_app().test_client()
    response = client.post("/predict", json={"instances": [GARMENTS[0].tolist()] * 3})
    assert response.status_code == 413 and "limit is 2" in response.get_json()["error"]["message"]
