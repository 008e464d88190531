"""Model versions side by side: the version policy, versions by path, query and V2, the repository index,
rollback taken by live reload, and one read of the model per request."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime
import pytest

from harness.images import encode, garment
from harness.publish import publish_model
from serving import create_app
from serving import dataplane as dataplane_module
from serving.repository import VersionPolicy
from training.rollback import rollback

IMAGE = garment(3, np.random.default_rng(3))  # (28, 28) uint8, light on black
PNG = encode(IMAGE, "PNG")
REPOSITORY = "model_repository/fashion-softmax"


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory):
    """An artifacts folder with three exports: versions 1, 2, 3 of the repository, 3 current."""
    folder = tmp_path_factory.mktemp("versions")
    manifests = [publish_model(folder, seed=seed) for seed in (21, 22, 23)]
    assert [m["model_repository"]["version"] for m in manifests] == [1, 2, 3]
    return folder, {m["model_repository"]["version"]: m["version"] for m in manifests}


@pytest.fixture
def artifacts(three_versions, tmp_path):
    folder, _ = three_versions
    copy = tmp_path / "artifacts"
    shutil.copytree(folder, copy)
    return copy


def app_for(folder, policy: str):
    return create_app({"MODEL_DIR": str(folder), "VERSION_POLICY": policy, "MODEL_RELOAD_INTERVAL": 0})


def onnx_probabilities(folder, version: int) -> np.ndarray:
    path = folder / REPOSITORY / str(version) / "model.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"image": IMAGE.astype(np.float32)[None, None]})[0][0]


def predict(client, query: str = ""):
    response = client.post(f"/predict{query}", data=PNG, content_type="image/png")
    return response, response.get_json()


@pytest.mark.parametrize(
    "text, policy",
    [
        ("latest", VersionPolicy("latest", 1)),
        ("latest:3", VersionPolicy("latest", 3)),
        (" Latest:2 ", VersionPolicy("latest", 2)),
        ("all", VersionPolicy("all")),
        ("specific:3,1,3", VersionPolicy("specific", versions=(1, 3))),
    ],
)
def test_version_policies_parse_as_documented(text, policy):
    assert VersionPolicy.parse(text) == policy
    assert VersionPolicy.parse(str(policy)) == policy  # printed as it is written


@pytest.mark.parametrize("text", ["", "newest", "latest:0", "latest:x", "specific", "specific:", "specific:0", "al"])
def test_a_bad_policy_is_refused_naming_the_forms(text):
    with pytest.raises(ValueError, match="latest, latest:N, all or specific:N"):
        VersionPolicy.parse(text)


def test_policies_pick_versions():
    available = [1, 3, 7, 8]
    assert VersionPolicy("latest", 2).pick(available) == {7, 8}
    assert VersionPolicy("latest", 9).pick(available) == {1, 3, 7, 8}
    assert VersionPolicy("all").pick(available) == {1, 3, 7, 8}
    assert VersionPolicy("specific", versions=(2, 3)).pick(available) == {3}


def test_by_default_only_the_current_version_is_served_and_the_index_says_why(artifacts, three_versions):
    _, names = three_versions
    client = app_for(artifacts, "latest").test_client()
    response, body = predict(client)
    assert {key: body["model"][key] for key in ("name", "version", "repository_version")} == {
        "name": "fashion-softmax", "version": names[3], "repository_version": 3}  # fmt: skip
    assert response.headers["X-Model-Version"] == names[3]
    index = client.post("/v2/repository/index").get_json()
    assert [(row["version"], row["state"]) for row in index] == [("1", "UNAVAILABLE"), ("2", "UNAVAILABLE"),
                                                                ("3", "READY")]  # fmt: skip
    assert index[0]["reason"] == "not in the version policy (latest:1)" and index[2]["reason"] == ""
    response, body = predict(client, "?version=1")
    assert response.status_code == 404 and body["error"]["code"] == "unknown_version"
    assert "not in the version policy" in body["error"]["message"]
    assert client.get("/v2/models/fashion-softmax").get_json()["versions"] == ["3"]


def test_every_version_answers_by_query_path_and_v2_with_its_own_model(artifacts, three_versions):
    _, names = three_versions
    client = app_for(artifacts, "all").test_client()
    for version in (1, 2, 3):
        response, body = predict(client, f"?version={version}")
        assert response.status_code == 200, body
        assert body["model"]["repository_version"] == version
        assert body["model"]["version"] == response.headers["X-Model-Version"] == names[version]
        expected = onnx_probabilities(artifacts, version)
        np.testing.assert_allclose(list(body["predictions"][0]["probabilities"].values()), expected, atol=1e-6)

        tensor = {"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": IMAGE.ravel().tolist()}
        v2 = client.post(f"/v2/models/fashion-softmax/versions/{version}/infer", json={"inputs": [tensor]})
        assert v2.status_code == 200 and v2.get_json()["model_version"] == str(version)
        np.testing.assert_allclose(v2.get_json()["outputs"][0]["data"], expected, atol=1e-6)
        assert client.get(f"/v2/models/fashion-softmax/versions/{version}/ready").get_json()["ready"] is True
        assert client.get(f"/metadata?version={version}").get_json()["repository_version"] == version

    assert predict(client)[1]["model"]["repository_version"] == 3  # no version: the current one
    assert client.get("/v2/models/fashion-softmax/versions/1").get_json()["versions"] == ["1", "2", "3"]
    ready = client.post("/v2/repository/index", json={"ready": True}).get_json()
    assert [row["version"] for row in ready] == ["1", "2", "3"]
    text = client.get("/metrics").get_data(as_text=True)
    for version in ("1", "2", "3"):
        assert f'fashion_softmax_images_predicted_total{{version="{version}"}}' in text


def test_specific_versions_are_served_beside_the_current_one(artifacts):
    client = app_for(artifacts, "specific:1").test_client()
    assert [row["version"] for row in client.post("/v2/repository/index", json={"ready": True}).get_json()] == [
        "1", "3"]  # fmt: skip
    assert predict(client, "?version=1")[0].status_code == 200
    response, body = predict(client, "?version=2")
    assert response.status_code == 404 and "specific:1" in body["error"]["message"]


def test_a_broken_older_version_is_unavailable_and_the_others_serve(artifacts):
    (artifacts / REPOSITORY / "1" / "model.onnx").write_bytes(b"damaged")
    client = app_for(artifacts, "all").test_client()
    rows = {row["version"]: row for row in client.post("/v2/repository/index").get_json()}
    assert rows["1"]["state"] == "UNAVAILABLE" and "does not match the sha256" in rows["1"]["reason"]
    assert rows["2"]["state"] == rows["3"]["state"] == "READY"
    response, body = predict(client, "?version=1")
    assert response.status_code == 404 and "cannot be loaded" in body["error"]["message"]
    assert predict(client, "?version=2")[0].status_code == 200


def test_a_bad_version_in_a_request_is_a_404(artifacts):
    client = app_for(artifacts, "latest").test_client()
    for query in ("?version=0", "?version=x", "?version=-1", "?version=%C2%B2"):  # the last: a superscript two
        response, body = predict(client, query)
        assert response.status_code == 404 and body["error"]["code"] == "unknown_version", query
    assert client.get("/v2/models/fashion-softmax/versions/abc/ready").status_code == 404


def test_a_rollback_is_taken_by_live_reload_and_a_served_version_is_reused(artifacts, three_versions):
    _, names = three_versions
    app = app_for(artifacts, "latest:2")  # 2 and 3 loaded
    client, repository = app.test_client(), app.extensions["repository"]
    version_two = repository.served.versions[2]
    rollback(artifacts, 2)
    assert repository.check() == "ok"
    response, body = predict(client)
    assert body["model"]["repository_version"] == 2 and response.headers["X-Model-Version"] == names[2]
    assert repository.served.current is version_two  # the loaded version, not a second copy
    assert json.loads((artifacts / "model.json").read_text())["model_repository"]["version"] == 2

    rollback(artifacts, 1)  # not loaded until now: loaded and checked
    assert repository.check() == "ok" and predict(client)[1]["model"]["repository_version"] == 1
    assert sorted(repository.served.versions) == [1, 2, 3]  # the current one beside the latest two
    np.testing.assert_allclose(
        list(predict(client)[1]["predictions"][0]["probabilities"].values()), onnx_probabilities(artifacts, 1),
        atol=1e-6,
    )  # fmt: skip


def test_the_model_is_read_once_per_request_even_when_a_reload_lands_midway(artifacts, three_versions, monkeypatch):
    """A rollback is published and taken while the request is being preprocessed: the request finishes on the
    version it started with, and its body and its header name that same version."""
    _, names = three_versions
    app = app_for(artifacts, "latest")
    client, repository = app.test_client(), app.extensions["repository"]
    real = dataplane_module.image_to_input
    swapped = []

    def preprocess_then_swap(*args, **kwargs):
        if not swapped:
            rollback(artifacts, 1)
            swapped.append(repository.check())
        return real(*args, **kwargs)

    monkeypatch.setattr(dataplane_module, "image_to_input", preprocess_then_swap)
    response, body = predict(client)
    assert swapped == ["ok"] and repository.predictor.repository_version == 1  # the swap happened midway
    assert body["model"]["version"] == response.headers["X-Model-Version"] == names[3]
    assert body["model"]["repository_version"] == 3
    response, body = predict(client)  # the next request: the new current version
    assert body["model"]["version"] == response.headers["X-Model-Version"] == names[1]
