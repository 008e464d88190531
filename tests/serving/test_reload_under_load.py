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

from harness import ROOT
from harness.images import GARMENTS, png
from harness.loadgen import Load
from harness.publish import publish_broken_model, publish_model
from harness.server import ProductionServer, metric_samples


def reload_counts(url: str) -> dict[str, float]:
    """fashion_softmax_model_reloads_total by result, summed over the workers."""
    return {labels["result"]: value for labels, value in metric_samples(url, "fashion_softmax_model_reloads")}


def test_reload_under_load_loses_no_request(copy_model, tmp_path):
    with ProductionServer(copy_model, tmp_path / "server.log", model_reload_interval=1) as server:
        url = server.url
        old_version = requests.get(f"{url}/ready", timeout=5).json()["model"]["version"]
        with Load(f"{url}/predict", png(GARMENTS[3]), "image/png", clients=4, limit_s=60) as load:
            time.sleep(4)
            new_version = publish_model(copy_model, seed=11)["version"]
            published = time.monotonic()
            time.sleep(8)
            publish_broken_model(copy_model)
            broken_published = time.monotonic()
            time.sleep(8)
        assert server.alive()
        counts = reload_counts(url)

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
    with ProductionServer(copy_model, tmp_path / "server.log", model_reload_interval=1) as server:
        with Load(f"{server.url}/predict", png(GARMENTS[3]), "image/png", clients=4, limit_s=60) as load:
            time.sleep(3)
            command = [sys.executable, "-m", "training.rollback", "1", "--out-dir", str(copy_model)]
            started = time.monotonic()
            subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=ROOT)
            deadline = time.monotonic() + 30
            while load.versions_after(time.monotonic() - 1) != {old} and time.monotonic() < deadline:
                time.sleep(0.2)
            settled = time.monotonic()
            time.sleep(2)
        assert server.alive()
    answers, failed = load.answers, load.failed()
    assert len(answers) > 100 and not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    assert {answer.version for answer in answers if answer.at < started} == {newer}
    assert load.versions_after(settled) == {old}  # every worker on the rolled-back version


def test_sighup_to_the_server_reloads_every_worker_in_place(copy_model, tmp_path):
    # only SIGHUP can reload: the timer waits an hour
    with ProductionServer(copy_model, tmp_path / "server.log", model_reload_interval=3600) as server:
        url = server.url
        workers = server.worker_pids()
        new_version = publish_model(copy_model, seed=12)["version"]
        time.sleep(1)
        assert reload_counts(url) == {}  # nothing noticed it yet
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while reload_counts(url).get("ok") != 2.0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reload_counts(url) == {"ok": 2.0}  # both workers, within seconds
        session = requests.Session()
        versions = {session.get(f"{url}/ready", timeout=5).json()["model"]["version"] for _ in range(20)}
        assert versions == {new_version}
        assert server.worker_pids() == workers and "Respawning" not in server.log_text()  # reloaded, not restarted
