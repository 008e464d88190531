"""Live model reload, in process: a newly published model is checked, then swapped in; a bad one is refused."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time

import numpy as np
import pytest

from harness.images import GARMENTS, png
from harness.publish import publish_broken_model, publish_model
from serving import create_app
from serving.model import ModelLoadError
from serving.repository import ModelRepository


def served_version(client) -> tuple[str, str]:
    response = client.post("/predict", data=png(GARMENTS[3]), content_type="image/png")
    assert response.status_code == 200
    return response.get_json()["model"]["version"], response.headers["X-Model-Version"]


def test_nothing_new_means_no_reload(copy_model):
    live = ModelRepository(copy_model)
    first = live.load().current
    assert live.check() is None and live.predictor is first


def test_a_new_model_is_swapped_in_and_the_old_one_finishes_its_work(copy_model):
    reloads = []
    live = ModelRepository(copy_model, on_reload=reloads.append)
    old = live.load().current
    manifest = publish_model(copy_model, seed=1)
    assert live.check() == "ok" and reloads == ["ok"]
    assert live.predictor.version == manifest["version"] != old.version
    assert live.predictor.manifest["sha256"] == manifest["sha256"]
    # a request that fetched the old predictor before the swap still completes on it
    assert old.predict(GARMENTS[3][None, None].astype("float32")).probabilities.argmax() == 3


@pytest.mark.parametrize("damage", ["model-does-not-load", "sha256-mismatch", "labels-changed"])
def test_a_bad_model_is_refused_and_the_old_one_keeps_serving(copy_model, damage):
    reloads = []
    live = ModelRepository(copy_model, on_reload=reloads.append)
    old = live.load().current
    manifest = json.loads((copy_model / "model.json").read_text())
    if damage == "model-does-not-load":
        publish_broken_model(copy_model)
    elif damage == "sha256-mismatch":
        manifest["sha256"] = hashlib.sha256(b"something else").hexdigest()
        (copy_model / "model.json").write_text(json.dumps(manifest))
    else:  # the model loads, but answers with other classes than the one served
        publish_model(copy_model, seed=2, labels=tuple(reversed(old.labels)))
    assert live.check() == "failed" and reloads == ["failed"]
    assert live.predictor is old
    assert live.last_failure["reason"] and live.last_failure["at"]
    assert live.check() is None  # refused once, not retried until the manifest changes again
    publish_model(copy_model, seed=3)
    assert live.check() == "ok" and live.predictor is not old


def test_a_model_whose_output_is_not_probabilities_is_refused_at_load(copy_model, monkeypatch):
    from serving.model import Outputs, Predictor

    def scores(self, pixels):  # (N, 10) scores that are not probabilities, and a sound novelty check
        novelty = np.zeros(len(pixels), np.float32)
        return Outputs(pixels.reshape(len(pixels), -1)[:, :10] + 5, novelty, novelty <= self.novelty_threshold)

    monkeypatch.setattr(Predictor, "predict", scores)
    with pytest.raises(ModelLoadError, match="not probabilities"):
        Predictor.load(copy_model)


@pytest.mark.parametrize("fault", ["flags-disagree", "not-finite", "wrong-shape"])
def test_a_model_whose_novelty_outputs_are_unsound_is_refused_at_load(copy_model, monkeypatch, fault):
    from serving.model import Outputs, Predictor

    sound = Predictor.predict

    def damaged(self, pixels):
        outputs = sound(self, pixels)
        novelty, flags = outputs.novelty, outputs.in_distribution
        if fault == "flags-disagree":
            flags = ~flags
        elif fault == "not-finite":
            novelty = np.full_like(novelty, np.nan)
        else:
            novelty = novelty[:1]
        return Outputs(outputs.probabilities, novelty, flags)

    monkeypatch.setattr(Predictor, "predict", damaged)
    with pytest.raises(ModelLoadError, match="novelty"):
        Predictor.load(copy_model)


def test_the_app_reports_reloads_in_responses_metadata_ready_and_metrics(copy_model):
    app = create_app({"MODEL_DIR": str(copy_model), "MODEL_RELOAD_INTERVAL": 0})
    client, live = app.test_client(), app.extensions["repository"]
    before, header = served_version(client)
    assert header == before

    publish_broken_model(copy_model)
    assert live.check() == "failed"
    assert served_version(client) == (before, before)
    assert client.get("/ready").status_code == 200
    metadata = client.get("/metadata").get_json()
    assert metadata["version"] == before and "not a usable model" in metadata["reload"]["last_failure"]["reason"]

    manifest = publish_model(copy_model, seed=4)
    assert live.check() == "ok"
    assert served_version(client) == (manifest["version"], manifest["version"])
    assert client.get("/metadata").get_json()["version"] == manifest["version"]
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fashion_softmax_model_reloads_total{result="failed"} 1.0' in text
    assert 'fashion_softmax_model_reloads_total{result="ok"} 1.0' in text


def test_the_watcher_finds_a_new_model_by_itself(copy_model):
    app = create_app({"MODEL_DIR": str(copy_model), "MODEL_RELOAD_INTERVAL": 0.1})
    manifest = publish_model(copy_model, seed=5)
    live = app.extensions["repository"]
    deadline = time.monotonic() + 10
    while live.predictor.version != manifest["version"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.predictor.version == manifest["version"]


def test_sighup_checks_at_once(copy_model):
    app = create_app({"MODEL_DIR": str(copy_model), "MODEL_RELOAD_INTERVAL": 3600})  # the timer never fires
    live = app.extensions["repository"]
    manifest = publish_model(copy_model, seed=6)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 5
        while live.predictor.version != manifest["version"] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert live.predictor.version == manifest["version"]


def test_a_service_started_without_a_model_becomes_ready_when_one_is_published(tmp_path):
    app = create_app({"MODEL_DIR": str(tmp_path), "MODEL_REQUIRED": False, "MODEL_RELOAD_INTERVAL": 0})
    client = app.test_client()
    assert client.get("/ready").status_code == 503
    publish_model(tmp_path, seed=7)
    assert app.extensions["repository"].check() == "ok"
    assert client.get("/ready").status_code == 200


def test_a_request_id_from_the_proxy_is_logged(client, caplog):
    with caplog.at_level("INFO", logger="serving"):
        client.post("/predict", data=png(GARMENTS[1]), content_type="image/png", headers={"X-Request-ID": "r-42"})
    assert any("r-42" in record.getMessage() and "/predict -> 200" in record.getMessage() for record in caplog.records)
