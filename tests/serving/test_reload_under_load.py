"""Reload under load: the production server with 2 workers, client threads posting for ~20 s while a new
model and then a broken one are published into its folder. Zero failed requests; both workers converge."""

from __future__ import annotations

import time

import requests

from bench.loadgen import Load
from tests.helpers import encode
from tests.serving.publish import publish_broken_model, publish_model
from tests.serving.test_api import GARMENTS
from tests.serving.test_gunicorn import free_port, start_gunicorn, wait_until_ready


def reload_counts(url: str) -> dict[str, float]:
    """fashion_softmax_model_reloads_total by result, summed over the workers."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    prefix = 'fashion_softmax_model_reloads_total{result="'
    return {line[len(prefix) : line.index('"}')]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith(prefix)}  # fmt: skip


def test_reload_under_load_loses_no_request(copy_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_SOFTMAX_MODEL_RELOAD_INTERVAL", "1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_gunicorn(copy_model, port, tmp_path / "server.log")
    try:
        wait_until_ready(url, server, tmp_path / "server.log")
        old_version = requests.get(f"{url}/ready", timeout=5).json()["model"]["version"]
        with Load(f"{url}/predict", encode(GARMENTS[3], "PNG"), "image/png", clients=4, limit_s=60) as load:
            time.sleep(4)
            new_version = publish_model(copy_model, seed=11)["version"]
            published = time.monotonic()
            time.sleep(8)
            publish_broken_model(copy_model)
            broken_published = time.monotonic()
            time.sleep(8)
        assert server.poll() is None
        counts = reload_counts(url)
    finally:
        server.terminate()
        server.wait(timeout=30)

    answers, failed = load.answers, load.failed()
    assert len(answers) > 500 and not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    assert {answer.version for answer in answers} == {old_version, new_version}  # "broken" never answered
    first_new = min(answer.at for answer in answers if answer.version == new_version)
    assert first_new - published < 10  # served within 10 s of publication
    assert load.versions_after(published + 10) == {new_version}  # both workers moved, past the broken one too
    assert any(answer.at > broken_published + 3 for answer in answers)
    assert counts == {"ok": 2.0, "failed": 2.0}  # per worker: one swap, one refusal
