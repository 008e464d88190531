"""Reload under load: the production server with 2 workers, client threads posting for ~20 s while a new
model and then a broken one are published into its folder. Zero failed requests; both workers converge."""

from __future__ import annotations

import threading
import time

import requests

from tests.helpers import encode
from tests.serving.publish import publish_broken_model, publish_model
from tests.serving.test_api import GARMENTS
from tests.serving.test_gunicorn import free_port, start_gunicorn, wait_until_ready

CLIENTS = 4
SECONDS = 20


class Load:
    """CLIENTS threads posting one PNG each in a loop; every answer is kept as (time, status, version)."""

    def __init__(self, url: str):
        self.url, self.answers, self.stop = url, [], threading.Event()
        self.threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def _client(self) -> None:
        session, body = requests.Session(), encode(GARMENTS[3], "PNG")
        while not self.stop.is_set():
            try:
                response = session.post(self.url, data=body, headers={"Content-Type": "image/png"}, timeout=10)
                answer = (time.monotonic(), response.status_code, response.headers.get("X-Model-Version"))
            except requests.RequestException as error:
                answer = (time.monotonic(), type(error).__name__, None)
            self.answers.append(answer)  # list.append is atomic

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


def reload_counts(url: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=5).text
    prefix = "fashion_softmax_model_reloads_total{result="
    return {line[len(prefix) + 1 : line.index('"}')]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith(prefix)}  # fmt: skip


def test_reload_under_load_loses_no_request(copy_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_SOFTMAX_MODEL_RELOAD_INTERVAL", "1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_gunicorn(copy_model, port, tmp_path / "server.log")
    try:
        wait_until_ready(url, server, tmp_path / "server.log")
        old_version = requests.get(f"{url}/ready", timeout=5).json()["model"]["version"]
        with Load(f"{url}/predict") as load:
            time.sleep(4)
            new_version = publish_model(copy_model, seed=11)["version"]
            published = time.monotonic()
            time.sleep(8)
            publish_broken_model(copy_model)
            broken_published = time.monotonic()
            time.sleep(SECONDS - 12)
        assert server.poll() is None
        counts = reload_counts(url)
    finally:
        server.terminate()
        server.wait(timeout=30)

    answers = load.answers
    failed = [answer for answer in answers if answer[1] != 200]
    assert len(answers) > 500 and not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    assert {version for _, _, version in answers} == {old_version, new_version}  # "broken" never answered
    first_new = min(at for at, _, version in answers if version == new_version)
    assert first_new - published < 10  # served within 10 s of publication
    settled = [version for at, _, version in answers if at > published + 10]
    assert settled and set(settled) == {new_version}  # both workers moved, and kept it past the broken one
    assert any(at > broken_published + 3 for at, _, _ in answers)
    assert counts == {"ok": 2.0, "failed": 2.0}  # per worker: one swap, one refusal
