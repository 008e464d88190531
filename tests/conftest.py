"""Fixtures shared by both halves: the real Fashion-MNIST, a model trained on it by the real CLI, and a small
model trained on synthetic garments."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.helpers import skip_or_fail, synthetic_images
from training.data import LABELS, DataNotFoundError, Split, load_fashion_mnist
from training.export import TrainingSummary, export
from training.novelty_eval import fit_and_evaluate
from training.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RealRun:
    data_dir: Path  # torchvision layout, found or unpacked by training.data
    test: Split  # the 10,000 real test images
    out_dir: Path  # the artifacts `python -m training` published
    finished: subprocess.CompletedProcess  # its exit status and output


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> RealRun:
    """2 epochs of the book's recipe on the real data through `python -m training` (skips only off CI)."""
    data_dir = tmp_path_factory.mktemp("fashion-mnist")
    try:
        train, test = load_fashion_mnist(data_dir)
    except DataNotFoundError as error:
        skip_or_fail(f"real Fashion-MNIST unavailable: {error}")
    assert (len(train.images), len(test.images)) == (60000, 10000)
    out_dir = tmp_path_factory.mktemp("artifacts")
    finished = subprocess.run(
        [sys.executable, "-m", "training", "--epochs", "2", "--quiet", "--device", "cpu",
         "--data-dir", str(data_dir), "--out-dir", str(out_dir)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    return RealRun(data_dir, test, out_dir, finished)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """artifacts/ of a model trained briefly on synthetic garments (class k = a bright band at rows 2+2k)."""
    folder = tmp_path_factory.mktemp("artifacts")
    splits = []
    for count, seed in ((2048, 0), (256, 1)):
        images, labels = synthetic_images(count, seed)
        splits.append(Split(torch.from_numpy(images), torch.from_numpy(labels).long()))
    config = TrainConfig(epochs=3, batch_size=64)
    result = fit(config, *splits, torch.device("cpu"))
    summary = TrainingSummary(config.to_dict(), "cpu", result.seconds, result.history)
    novelty = fit_and_evaluate(result.net, *splits, sets=())  # no out-of-distribution sets: quick
    export(result.net, novelty, summary, *splits, LABELS, folder)
    return folder
