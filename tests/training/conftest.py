"""Fixtures for the training tests: tiny data that the tests make themselves."""

import pytest
import torch

from tests.helpers import synthetic_images
from training.data import LABELS, Split
from training.export import TrainingSummary, export
from training.novelty_eval import fit_and_evaluate
from training.ood import build_sets
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
        summary = TrainingSummary(config.to_dict(), "cpu", result.seconds, result.history)
        return export(result.net, with_novelty, summary, *small_splits, LABELS, out_dir)

    return run
