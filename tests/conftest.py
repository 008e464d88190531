"""Fixtures shared by both halves: the real Fashion-MNIST, a model trained on it by the real CLI, a small
model trained on synthetic garments, and wrk for the load tests."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from harness import ROOT
from harness.ci import skip_or_fail
from harness.publish import export_fit, synthetic_split
from harness.tokens import ISSUED_TOKENS
from training.data import DataNotFoundError, Split, load_fashion_mnist
from training.train import TrainConfig, fit


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
    train, test = synthetic_split(2048, 0), synthetic_split(256, 1)
    config = TrainConfig(epochs=3, batch_size=64)
    export_fit(folder, config, fit(config, train, test, torch.device("cpu")), train, test)
    return folder


class Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def no_token_is_ever_logged(tmp_path_factory):
    """After the whole run: no token a test made is in any log line of this process or in any file the tests'
    servers wrote (their logs live under the run's temporary folder)."""
    kept = Kept()
    logging.getLogger().addHandler(kept)
    yield
    logging.getLogger().removeHandler(kept)
    written = [path for path in tmp_path_factory.getbasetemp().rglob("*")
               if path.is_file() and path.stat().st_size < 5_000_000]  # fmt: skip
    leaks = [f"a log record: {line[:40]}..." for line in kept.lines if any(token in line for token in ISSUED_TOKENS)]
    for path in written:
        content = path.read_bytes()
        leaks += [f"{path}" for token in ISSUED_TOKENS if token.encode() in content]
    assert not leaks, f"{len(ISSUED_TOKENS)} tokens made; found in: {leaks}"


@pytest.fixture
def needs_wrk():
    """wrk (Debian's package), which load tests drive; skips without it, except under CI."""
    if not shutil.which("wrk"):
        skip_or_fail("wrk is not installed (apt-get install wrk)")
