"""Publishing models into a served folder during tests: a good one by the real exporter, or a broken one."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from tests.helpers import synthetic_images
from training.data import LABELS, Split
from training.export import TrainingSummary, export
from training.novelty_eval import fit_and_evaluate
from training.train import TrainConfig, fit


def publish_model(folder: Path, seed: int, labels: tuple[str, ...] = LABELS) -> dict:
    """Train a small model (synthetic garments, `seed`) and export it into `folder`; returns its manifest."""
    images, classes = synthetic_images(512, seed)
    split = Split(torch.from_numpy(images), torch.from_numpy(classes).long())
    config = TrainConfig(epochs=1, batch_size=64, seed=seed)
    result = fit(config, split, split, torch.device("cpu"))
    _wait_for_a_new_version_stamp(folder)
    summary = TrainingSummary(config.to_dict(), "cpu", result.seconds, result.history)
    novelty = fit_and_evaluate(result.net, split, split, sets=())  # no out-of-distribution sets: quick
    return export(result.net, novelty, summary, split, split, labels, folder)


def publish_broken_model(folder: Path) -> None:
    """A consistent manifest (its sha256 matches) whose model.onnx is no ONNX graph, published model first."""
    manifest = json.loads((folder / "model.json").read_text())
    garbage = b"this is not an ONNX model"
    manifest.update(sha256=hashlib.sha256(garbage).hexdigest(), version="broken")
    for name, content in (("model.onnx", garbage), ("model.json", json.dumps(manifest).encode())):
        staged = folder / f".{name}.tmp"
        staged.write_bytes(content)
        os.replace(staged, folder / name)


def _wait_for_a_new_version_stamp(folder: Path) -> None:
    """Versions are stamped to the second: two exports within one second would share one."""
    manifest = folder / "model.json"
    if manifest.exists():
        stamp = json.loads(manifest.read_text()).get("created_at", "")
        while datetime.now(UTC).isoformat(timespec="seconds") == stamp:
            time.sleep(0.05)
