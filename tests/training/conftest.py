"""Fixtures for the training tests: tiny data that the tests make themselves."""

import pytest
import torch

from harness.publish import export_fit, synthetic_split
from training.data import Split
from training.train import TrainConfig, fit


@pytest.fixture(scope="session")
def small_splits() -> tuple[Split, Split]:
    return synthetic_split(1024, 0), synthetic_split(256, 1)


@pytest.fixture(scope="session")
def trained(small_splits):
    config = TrainConfig(epochs=2, batch_size=64)
    return config, fit(config, *small_splits, torch.device("cpu"))


@pytest.fixture
def export_to(small_splits, trained):
    """Export the small trained model into a folder; returns the manifest."""
    config, result = trained

    def run(out_dir):
        return export_fit(out_dir, config, result, *small_splits)

    return run
