"""The training loop on small data: it learns, it is reproducible, recipes fold back."""

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR

from training import train as train_module
from training.model import SoftmaxRegression, softmax_cross_entropy
from training.train import RECIPES, TrainConfig, accuracy_on, fit

CPU = torch.device("cpu")


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


def learning_rates_used(config: TrainConfig, splits, monkeypatch) -> list[float]:
    """The learning rate of every SGD step `fit` takes with `config`, in order."""
    used, sgd = [], train_module.sgd

    def recording_sgd(params, lr, batch_size):
        used.append(lr)
        sgd(params, lr, batch_size)

    monkeypatch.setattr(train_module, "sgd", recording_sgd)
    fit(config, *splits, CPU)
    return used


def torchs_cosine_annealing(lr: float, steps: int) -> list[float]:
    """The learning rates torch.optim.lr_scheduler.CosineAnnealingLR gives SGD over `steps` steps (to 0)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    schedule = CosineAnnealingLR(optimizer, T_max=steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_the_cosine_schedule_is_torchs_cosine_annealing_step_by_step(small_splits, monkeypatch):
    config = TrainConfig(epochs=3, batch_size=200, lr=0.2, schedule="cosine")
    used = learning_rates_used(config, small_splits, monkeypatch)
    steps = 3 * math.ceil(len(small_splits[0].images) / 200)  # 3 epochs of 6 steps (1,024 images)
    assert len(used) == steps == 18
    assert used == pytest.approx(torchs_cosine_annealing(0.2, steps), rel=1e-9, abs=1e-12)
    assert used[0] == 0.2 and used[steps // 2] == pytest.approx(0.1)  # from lr, through lr / 2 halfway
    assert all(a > b > 0 for a, b in itertools.pairwise(used))  # down every step, never to 0 in use


def test_the_constant_schedule_keeps_the_rate(small_splits, monkeypatch):
    used = learning_rates_used(TrainConfig(epochs=2, batch_size=256, lr=0.3), small_splits, monkeypatch)
    assert used == [0.3] * 8


def test_weight_decay_and_the_schedule_take_torchs_sgd_steps(small_splits):
    """Full-batch steps (the order of the images cannot matter) from the same start as torch.optim.SGD with
    weight decay on W only (L2 on the weights, not the bias) and CosineAnnealingLR, on F.cross_entropy."""
    train, test = small_splits
    count = len(train.images)
    config = TrainConfig(epochs=4, batch_size=count, lr=0.5, weight_decay=0.05, schedule="cosine")
    ours = fit(config, train, test, CPU).net

    start = SoftmaxRegression.init(device=CPU, generator=torch.Generator().manual_seed(config.seed))
    W, b = (start.W.detach().clone().requires_grad_(), start.b.detach().clone().requires_grad_())
    optimizer = torch.optim.SGD([{"params": [W], "weight_decay": 0.05}, {"params": [b], "weight_decay": 0.0}], lr=0.5)
    schedule = CosineAnnealingLR(optimizer, T_max=config.epochs)
    X, y = train.images.reshape(count, -1).float() / 255, train.labels  # (N, 784) in [0, 1], (N,)
    for _ in range(config.epochs):
        optimizer.zero_grad()
        F.cross_entropy(X @ W + b, y).backward()
        optimizer.step()
        schedule.step()
    torch.testing.assert_close(ours.W, W.detach(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours.b, b.detach(), rtol=1e-4, atol=1e-6)

    without = fit(dataclasses.replace(config, weight_decay=0.0), train, test, CPU).net
    assert ours.W.norm() < without.W.norm()  # the decay shrinks the weights
