"""Live reload in the production server (2 workers): under load, a new model and then a broken one are
published into its folder with zero failed requests; SIGHUP to the server reloads every worker at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import requests

from bench.loadgen import Load
from tests.helpers import encode
from tests.serving.live_server import ROOT, free_port, start_server, stop, wait_until_ready, worker_pids
from tests.serving.publish import publish_broken_model, publish_model
from tests.serving.test_api import GARMENTS


def reload_counts(url: str) -> dict[str, float]:
    """fashion_softmax_model_reloads_total by result, summed over the workers."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    prefix = 'fashion_softmax_model_reloads_total{result="'
    return {line[len(prefix) : line.index('"}')]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith(prefix)}  # fmt: skip


def test_reload_under_load_loses_no_request(copy_model, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(copy_model, port, tmp_path / "server.log", model_reload_interval=1)
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
        stop(server)

    answers, failed = load.answers, load.failed()
    assert len(answers) > 500 and not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    assert {answer.version for answer in answers} == {old_version, new_version}  # "broken" never answered
    first_new = min(answer.at for answer in answers if answer.version == new_version)
    assert first_new - published < 10  # served within 10 s of publication
    assert load.versions_after(published + 10) == {new_version}  # both workers moved, past the broken one too
    assert any(answer.at > broken_published + 3 for answer in answers)
    assert counts == {"ok": 2.0, "failed": 2.0}  # per worker: one swap, one refusal


def test_a_rollback_under_load_loses_no_request(copy_model, tmp_path):
    """`python -m training.rollback 1` while clients post: every answer 200, version 1 answers from then on."""
    old = json.loads((copy_model / "model.json").read_text())["version"]  # repository version 1
    newer = publish_model(copy_model, seed=13)["version"]  # version 2, current
    port = free_port()
    url, log = f"http://127.0.0.1:{port}", tmp_path / "server.log"
    server = start_server(copy_model, port, log, model_reload_interval=1)
    try:
        wait_until_ready(url, server, log)
        with Load(f"{url}/predict", encode(GARMENTS[3], "PNG"), "image/png", clients=4, limit_s=60) as load:
            time.sleep(3)
            command = [sys.executable, "-m", "training.rollback", "1", "--out-dir", str(copy_model)]
            started = time.monotonic()
            subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=ROOT)
            deadline = time.monotonic() + 30
            while load.versions_after(time.monotonic() - 1) != {old} and time.monotonic() < deadline:
                time.sleep(0.2)
            settled = time.monotonic()
            time.sleep(2)
        assert server.poll() is None
    finally:
        stop(server)
    answers, failed = load.answers, load.failed()
    assert len(answers) > 100 and not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    assert {answer.version for answer in answers if answer.at < started} == {newer}
    assert load.versions_after(settled) == {old}  # every worker on the rolled-back version


def test_sighup_to_the_server_reloads_every_worker_in_place(copy_model, tmp_path):
    port = free_port()
    url, log = f"http://127.0.0.1:{port}", tmp_path / "server.log"
    server = start_server(copy_model, port, log, model_reload_interval=3600)  # only SIGHUP can reload
    try:
        wait_until_ready(url, server, log)
        workers = worker_pids(server.pid)
        new_version = publish_model(copy_model, seed=12)["version"]
        time.sleep(1)
        assert reload_counts(url) == {}  # nothing noticed it yet
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while reload_counts(url).get("ok") != 2.0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reload_counts(url) == {"ok": 2.0}  # both workers, within seconds
        session = requests.Session()
        versions = {session.get(f"{url}/ready", timeout=5).json()["model"]["version"] for _ in range(20)}
        assert versions == {new_version}
        assert worker_pids(server.pid) == workers and "Respawning" not in log.read_text()  # reloaded, not restarted
    finally:
        stop(server)
