"""The parts of `make bench-peers` that stand without the peers: reading answers and comparing them, CPU steal,
the tables and the chart, a peer that cannot be installed or started (reported and skipped), and the whole run
with such peers beside our real server."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import bench_peers
from bench.peers import answers, flask_peer, launch, report, steal
from bench.peers.catalog import PAYLOADS, PEERS, Peer
from bench.peers.onnx_model import OnnxModel, png_answer, png_pixels, v2_answer
from harness import wrk
from harness.ci import skip_or_fail
from harness.images import synthetic_images, write_idx_set
from serving import create_app


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return synthetic_images(4, seed=3)[0]  # (4, 28, 28) uint8 garments, light on black


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def v2_binary_answer(outputs: list[tuple[str, np.ndarray]]) -> tuple[bytes, dict]:
    """A V2 answer with every output in the binary extension, as Triton and KServe send it."""
    raw = [array.astype("<f4").tobytes() for _, array in outputs]
    head = json.dumps({"outputs": [{"name": name, "datatype": "FP32", "shape": list(array.shape),
                                    "parameters": {"binary_data_size": len(data)}}
                                   for (name, array), data in zip(outputs, raw, strict=True)]}).encode()  # fmt: skip
    return head + b"".join(raw), {"Inference-Header-Content-Length": str(len(head))}


SERVED_APPS = {
    "ours": lambda model_dir: create_app({"MODEL_DIR": str(model_dir), "TESTING": True}),
    "bare Flask": lambda model_dir: flask_peer.create_app(str(model_dir / "model.onnx")),  # bench/peers/flask_peer.py
}


@pytest.mark.parametrize("app", SERVED_APPS.values(), ids=SERVED_APPS.keys())
def test_the_flask_apps_answers_read_as_the_models_probabilities(app, model_dir, pixels):
    """/predict and /v2 answers (JSON and binary), read back, are what onnxruntime gives for the same images."""
    expected = OnnxModel(str(model_dir / "model.onnx")).predict(pixels.astype(np.float32)[:, None])
    client = app(model_dir).test_client()
    single = client.post("/predict", data=png(pixels[0]), content_type="image/png")
    assert answers.disagreement(expected[:1], answers.probabilities(single.data, single.headers)) is None
    for build in (bench_peers.v2_bodies.json_fp32, bench_peers.v2_bodies.binary_fp32):
        body, content_type, headers, _ = build(pixels)
        answer = client.post(bench_peers.V2_INFER, data=body, content_type=content_type, headers=headers)
        assert answer.status_code == 200, answer.data
        assert answers.disagreement(expected, answers.probabilities(answer.data, answer.headers)) is None


def test_the_peers_answers_read_as_the_models_probabilities(model_dir, pixels):
    model = OnnxModel(str(model_dir / "model.onnx"))
    expected = model.predict(pixels.astype(np.float32)[:, None])
    as_json = json.dumps(v2_answer(expected)).encode()
    assert answers.disagreement(expected, answers.probabilities(as_json, {})) is None
    single = model.predict(png_pixels(png(pixels[0])))
    assert (
        answers.disagreement(expected[:1], answers.probabilities(json.dumps(png_answer(single)).encode(), {})) is None
    )


def test_a_binary_answer_is_read_at_its_own_offset_whatever_the_header_case():
    first, wanted = np.arange(6, dtype=np.float32).reshape(2, 3), np.full((2, 10), 0.1, dtype=np.float32)
    body, headers = v2_binary_answer([("logits", first), ("probabilities", wanted)])
    lower = {name.lower(): value for name, value in headers.items()}
    for given in (headers, lower):
        np.testing.assert_allclose(answers.probabilities(body, given), wanted)


@pytest.mark.parametrize(
    "body", [b"Internal Server Error", b"[1, 2]", b'{"detail": "Not Found"}', b"\x89PNG\r\n"], ids=str
)
def test_an_answer_without_probabilities_is_a_value_error(body):
    with pytest.raises(ValueError):
        answers.probabilities(body, {})


def test_answers_agree_within_the_tolerance_only():
    ours = np.full((2, 10), 0.1)
    assert answers.disagreement(ours, ours + answers.TOLERANCE / 2) is None
    assert "differ from ours by up to" in answers.disagreement(ours, ours + answers.TOLERANCE * 3)
    assert answers.disagreement(ours, ours[:1]) == "shape [1, 10], ours [2, 10]"


def test_steal_is_the_share_of_stolen_ticks_between_two_readings():
    before = steal.cpu_times("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\n")
    after = steal.cpu_times("cpu  200 0 100 1600 20 0 0 80 0 0\n")
    assert before == [100, 0, 50, 800, 10, 0, 0, 40, 0, 0]
    assert steal.steal_percent(before, after) == pytest.approx(100 * 40 / 1000)
    assert steal.steal_percent(after, after) == 0.0
    now = steal.cpu_times()  # this machine's /proc/stat
    assert len(now) >= 8 and 0.0 <= steal.steal_percent(before=[0] * len(now), after=now) <= 100.0


def test_wrk_runs_with_the_client_threads_asked_for(tmp_path):
    argv = wrk.command("http://127.0.0.1:1/x", tmp_path / "body.bin", "image/png", 16, 10, threads=2)
    assert argv[:3] == ["wrk", "-t2", "-c16"]


def run(rps: float, p99: float, steal_percent: float = 0.0) -> dict:
    return {"requests_per_second": rps, "p50_ms": p99 / 2, "p99_ms": p99, "errors": 0, "steal_percent": steal_percent}


def a_report() -> dict:
    cells = {"ours": report.summarize([run(300, 10), run(100, 30), run(200, 20)]),
             "mlserver": report.summarize([run(100, 40)] * 3)}  # fmt: skip
    return {
        "conditions": {"client": "wrk -t2 -c16", "duration_s": 10, "rounds": 3},
        "servers": {
            "ours": {"title": "ours", "status": "ok"},
            "mlserver": {"title": "MLServer 1.7.1", "status": "ok"},
            "bentoml": {"title": "BentoML 1.4.40", "status": "unavailable", "reason": "install failed: no wheel"},
        },
        "payloads": {
            "png": {
                "title": PAYLOADS["png"],
                "cells": cells,
                "ratios": report.ratios(cells),
                "not_taken": {"mlserver": "HTTP 500: 'Internal Server Error'"},
            }
        },
    }


def test_medians_and_ratios_are_ours_over_the_peers():
    built = a_report()["payloads"]["png"]
    assert built["cells"]["ours"]["requests_per_second"] == 200 and built["cells"]["ours"]["p99_ms"] == 20
    assert len(built["cells"]["ours"]["runs"]) == 3
    assert built["ratios"] == {"mlserver": {"requests_per_second": 2.0, "p99_ms": 0.5}}


def test_the_tables_show_every_timed_cell_and_why_the_others_were_not(tmp_path):
    built = a_report()
    printed = report.table(built)
    assert "| one 28x28 PNG, raw body | MLServer 1.7.1 | 100 | 20.00 | 40.00 | 0 | 0.0 | 2.00 | 0.50 |" in printed
    assert "- BentoML 1.4.40: unavailable: install failed: no wheel" in printed
    assert "- MLServer 1.7.1: one 28x28 PNG, raw body: HTTP 500" in printed
    summary = report.ratio_table(built).splitlines()
    assert summary[0] == "| ours/peer, requests/s | MLServer 1.7.1 |"  # the unavailable peer has no column
    assert summary[2] == "| one 28x28 PNG, raw body | 2.00 |"
    report.draw(built, tmp_path / "peers.png")
    with Image.open(tmp_path / "peers.png") as chart:
        assert chart.format == "PNG" and chart.width > 500


def test_every_peer_names_its_pinned_version_and_where_each_payload_goes():
    for peer in PEERS:
        assert peer.version() != "?", peer.name
        assert peer.environment is None or (launch.REQUIREMENTS / f"{peer.environment}.txt").exists()
        assert all(peer.path(name) is None or peer.path(name).startswith("/") for name in PAYLOADS)


@pytest.fixture
def peer_homes(tmp_path, monkeypatch):
    """Requirements and environments in tmp_path: the real .peers/ and bench/peers/requirements/ are untouched."""
    requirements, environments = tmp_path / "requirements", tmp_path / "environments"
    requirements.mkdir()
    monkeypatch.setattr(launch, "REQUIREMENTS", requirements)
    monkeypatch.setattr(launch, "ENVIRONMENTS", environments)
    return requirements, environments


def prepared_environment(requirements: Path, environments: Path, name: str) -> Path:
    """An environment that counts as installed: its stamp matches its requirements; its Python is ours."""
    (requirements / f"{name}.txt").write_text("pinned==1.0\n")
    (environments / name / "bin").mkdir(parents=True)
    (environments / name / "bin" / "python").symlink_to(sys.executable)
    digest = hashlib.sha256((requirements / f"{name}.txt").read_bytes()).hexdigest()
    (environments / name / launch.STAMP).write_text(digest)
    return environments / name / "bin" / "python"


def test_an_installed_environment_is_used_as_it_is(peer_homes):
    python = prepared_environment(*peer_homes, "ready")
    assert launch.ensure_environment("ready", limit_s=0.001) == python


def test_an_environment_that_fails_to_install_is_unavailable_and_removed(peer_homes):
    requirements, environments = peer_homes
    (requirements / "broken.txt").write_text("this is not a requirement ===\n")
    found = launch.ensure_environments(["broken"], limit_s=300)
    assert isinstance(found["broken"], launch.PeerUnavailable)
    assert str(found["broken"]).startswith("install failed: ") and "requirement" in str(found["broken"]).lower()
    assert not (environments / "broken").exists()


def test_an_install_out_of_time_is_unavailable(peer_homes):
    requirements, environments = peer_homes
    (requirements / "slow.txt").write_text("numpy\n")
    with pytest.raises(launch.PeerUnavailable, match="not installed within"):
        launch.ensure_environment("slow", limit_s=0.5)
    assert not (environments / "slow").exists()


def test_a_server_that_exits_at_start_is_unavailable_with_its_last_words(tmp_path):
    command = [sys.executable, "-c", "import sys; print('boom: no such framework', flush=True); sys.exit(3)"]
    with pytest.raises(launch.PeerUnavailable, match="exited with 3: boom: no such framework"):
        launch.PeerProcess(command, "http://127.0.0.1:9/ready", tmp_path, limit_s=30).__enter__()


def test_a_server_never_ready_is_stopped_with_everything_it_spawned(tmp_path):
    """The server spawns a child and both ignore SIGTERM: after the limit both are gone (SIGKILL to the group)."""
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)']); time.sleep(300)")  # fmt: skip
    process = launch.PeerProcess([sys.executable, "-c", script], "http://127.0.0.1:9/ready", tmp_path, limit_s=2,
                                  grace_s=1)  # fmt: skip
    with pytest.raises(launch.PeerUnavailable, match="not ready within 2 s"):
        process.__enter__()
    assert not launch.group_alive(process.process.pid)


def test_the_run_reports_peers_that_cannot_install_or_start_and_times_ours(model_dir, peer_homes, tmp_path,
                                                                           monkeypatch, capsys):  # fmt: skip
    """The whole benchmark with our real server and two peers that fail: they are reported, nothing fails."""
    if not shutil.which("wrk"):
        skip_or_fail("wrk not installed (Debian's package)")
    requirements, environments = peer_homes
    (requirements / "uninstallable.txt").write_text("pinned==1.0\nthis is not a requirement ===\n")
    prepared_environment(requirements, environments, "unstartable")
    monkeypatch.setattr(bench_peers, "PEERS", [
        Peer("uninstallable", "Uninstallable", "pinned", "uninstallable", "bench.peers.onnx_model", "/", "/x"),
        Peer("unstartable", "Unstartable", "pinned", "unstartable", "bench.peers.no_such_peer", "/", "/x"),
    ])  # fmt: skip
    write_idx_set(tmp_path / "data" / "FashionMNIST" / "raw", train_count=64, test_count=64)
    bench_peers.main(["--rounds", "1", "--duration", "1", "--warmup", "1", "--model-dir", str(model_dir),
                      "--data-dir", str(tmp_path / "data"), "--results", str(tmp_path / "results")])  # fmt: skip
    results = json.loads((tmp_path / "results" / "peers.json").read_text())
    servers = results["servers"]
    assert servers["uninstallable"]["status"] == "unavailable"
    assert servers["uninstallable"]["reason"].startswith("install failed: ")
    assert servers["unstartable"]["status"] == "unavailable"
    assert "No module named bench.peers.no_such_peer" in servers["unstartable"]["reason"]
    assert "No module named" in (tmp_path / "results" / "peers-unstartable.log").read_text()  # kept beside it
    assert set(results["payloads"]) == set(PAYLOADS)
    for payload in results["payloads"].values():
        assert list(payload["cells"]) == ["ours"] and payload["cells"]["ours"]["requests_per_second"] > 0
        assert payload["cells"]["ours"]["errors"] == 0
    printed = capsys.readouterr().out
    assert "Uninstallable 1.0: unavailable: install failed" in printed
    assert (tmp_path / "results" / "peers.png").exists()
