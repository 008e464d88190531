"""Fixtures shared by both halves: the real Fashion-MNIST and a model trained on it by the real CLI."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import skip_or_fail
from training.data import DataNotFoundError, Split, load_fashion_mnist

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
