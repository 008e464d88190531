"""Fixtures for the training tests: tiny data that the tests make themselves."""

import pytest
import torch

from tests.helpers import synthetic_images
from training.data import LABELS, Split
from training.export import TrainingSummary, export
from training.train import TrainConfig, fit


def make_split(count: int, seed: int) -> Split:
    images, labels = synthetic_images(count, seed)
    return Split(torch.from_numpy(images), torch.from_numpy(labels).long())


@pytest.fixture(scope="session")
def small_splits() -> tuple[Split, Split]:
    return make_split(1024, 0), make_split(256, 1)


@pytest.fixture(scope="session")
def trained(small_splits):
    config = TrainConfig(epochs=2, batch_size=64)
    return config, fit(config, *small_splits, torch.device("cpu"))


@pytest.fixture
def export_to(small_splits, trained):
    """Export the small trained model into a folder; returns the manifest."""
    config, result = trained

    def run(out_dir):
        summary = TrainingSummary(config.to_dict(), "cpu", result.seconds, result.history)
        return export(result.net, summary, *small_splits, LABELS, out_dir)

    return run
