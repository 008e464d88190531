"""The training loop on small data: it learns, it is reproducible, recipes fold back."""

import dataclasses

import pytest
import torch

from training.model import softmax_cross_entropy
from training.train import RECIPES, TrainConfig, accuracy_on, fit


def mean_loss(net, split):
    X = split.images.reshape(len(split.images), -1).float() / 255
    with torch.no_grad():
        return float(softmax_cross_entropy(net.logits(X), split.labels).mean())


def test_one_epoch_lowers_the_loss(small_splits):
    train, test = small_splits
    config = TrainConfig(epochs=1, batch_size=64)
    result = fit(config, train, test, torch.device("cpu"))
    untrained = fit(dataclasses.replace(config, lr=1e-12), train, test, torch.device("cpu")).net
    assert mean_loss(result.net, train) < 0.5 * mean_loss(untrained, train)
    assert len(result.history) == 1
    epoch = result.history[0]
    assert epoch.epoch == 1 and epoch.seconds > 0 and 0 <= epoch.train_accuracy <= 1
    assert epoch.test_accuracy == pytest.approx(accuracy_on(result.net, test, torch.device("cpu")))


def test_same_seed_same_model_other_seed_other_model(small_splits):
    config = TrainConfig(epochs=1, batch_size=128)
    first = fit(config, *small_splits, torch.device("cpu")).net
    again = fit(config, *small_splits, torch.device("cpu")).net
    other = fit(dataclasses.replace(config, seed=1), *small_splits, torch.device("cpu")).net
    assert torch.equal(first.W, again.W) and torch.equal(first.b, again.b)
    assert not torch.equal(first.W, other.W)


def test_best_recipe_folds_standardisation_into_the_linear_model(small_splits):
    train, test = small_splits
    config = dataclasses.replace(RECIPES["best"], epochs=3)
    result = fit(config, train, test, torch.device("cpu"))
    assert result.net.W.shape == (784, 10) and result.net.b.shape == (10,)
    # the folded model on raw [0, 1] pixels reproduces the test accuracy measured in training
    assert accuracy_on(result.net, test, torch.device("cpu")) == pytest.approx(result.history[-1].test_accuracy)
    assert result.history[-1].test_accuracy > 0.9  # the synthetic classes are separable


def test_books_recipe_is_the_books():
    book = RECIPES["book"]
    assert (book.epochs, book.lr, book.batch_size) == (10, 0.1, 256)
    assert book.weight_decay == 0 and book.schedule == "constant" and not book.standardize


def test_unknown_schedule_is_refused(small_splits):
    with pytest.raises(ValueError, match="schedule"):
        fit(TrainConfig(schedule="linear"), *small_splits, torch.device("cpu"))
