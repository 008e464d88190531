"""Fixtures for the training tests: tiny data that the tests make themselves."""

import pytest
import torch

from harness.publish import export_fit, synthetic_split
from training.data import Split
from training.novelty_eval import fit_and_evaluate
from training.ood import build_sets
from training.train import TrainConfig, fit


@pytest.fixture(scope="session")
def small_splits() -> tuple[Split, Split]:
    return synthetic_split(1024, 0), synthetic_split(256, 1)


@pytest.fixture(scope="session")
def trained(small_splits):
    config = TrainConfig(epochs=2, batch_size=64)
    return config, fit(config, *small_splits, torch.device("cpu"))


@pytest.fixture(scope="session")
def novelty(small_splits, trained):
    """The detector fitted on the small training split, evaluated on no out-of-distribution set (quick)."""
    _, result = trained
    return fit_and_evaluate(result.net, *small_splits, sets=())


@pytest.fixture(scope="session")
def ood_sets():
    """Every out-of-distribution set, built once (a few seconds)."""
    return build_sets()


@pytest.fixture(scope="session")
def novelty_on_sets(small_splits, trained, ood_sets):
    """The detector fitted on the small training split, evaluated on every out-of-distribution set."""
    _, result = trained
    return fit_and_evaluate(result.net, *small_splits, ood_sets)


@pytest.fixture
def export_to(small_splits, trained, novelty):
    """Export the small trained model into a folder; returns the manifest."""
    config, result = trained

    def run(out_dir, with_novelty=novelty):
        return export_fit(out_dir, config, result, *small_splits, novelty=with_novelty)

    return run
