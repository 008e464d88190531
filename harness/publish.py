"""Models for tests, trained on synthetic garments and published by the real exporter (or a broken one).

export_fit(folder, config, fit(config, train, test, cpu), train, test)   # artifacts/ as the CLI writes it
publish_model(served_folder, seed=1)                                      # a new version, while it is served
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from harness.images import synthetic_images
from training.data import LABELS, Split
from training.export import TrainingSummary, export
from training.novelty_eval import Novelty, fit_and_evaluate
from training.train import TrainConfig, TrainResult, fit


def synthetic_split(count: int, seed: int) -> Split:
    """`count` separable fake garments as the training code takes them (harness/images.py)."""
    images, labels = synthetic_images(count, seed)
    return Split(torch.from_numpy(images), torch.from_numpy(labels).long())


def export_fit(
    folder: Path,
    config: TrainConfig,
    result: TrainResult,
    train: Split,
    test: Split,
    labels: tuple = LABELS,
    novelty: Novelty | None = None,
) -> dict:
    """A CPU training result exported into `folder` by the real exporter; returns the manifest. Without `novelty`,
    its detector is fitted here, evaluated on no out-of-distribution set (quick)."""
    summary = TrainingSummary(config.to_dict(), "cpu", result.seconds, result.history)
    novelty = novelty or fit_and_evaluate(result.net, train, test, sets=())
    return export(result.net, novelty, summary, train, test, labels, folder)


def publish_model(folder: Path, seed: int, labels: tuple[str, ...] = LABELS) -> dict:
    """Train a small model (synthetic garments, `seed`) and export it into `folder`; returns its manifest."""
    split = synthetic_split(512, seed)
    config = TrainConfig(epochs=1, batch_size=64, seed=seed)
    result = fit(config, split, split, torch.device("cpu"))
    _wait_for_a_new_version_stamp(folder)
    return export_fit(folder, config, result, split, split, labels)


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
