"""The training loop: recipes, epochs over on-device tensors, per-epoch metrics.

`fit(config, train_split, test_split, device)` returns the trained `SoftmaxRegression`
(on 0-1 pixels, whatever the recipe did inside) and its history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from training.data import Split
from training.model import (
    SoftmaxRegression,
    backward,
    correct_count,
    evaluate_accuracy,
    sgd,
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that changes the result. Defaults are the book's (D2L 3.6)."""

    recipe: str = "book"  # name of the recipe these settings came from
    epochs: int = 10  # passes over the 60,000 training images
    lr: float = 0.1  # SGD step size on the mean minibatch loss
    batch_size: int = 256  # images per SGD step
    seed: int = 0  # seeds the initial W and the per-epoch shuffles
    weight_decay: float = 0.0  # L2 penalty on W (0 in the book)
    schedule: str = "constant"  # "constant" lr, or "cosine" decay to 0 over all steps
    standardize: bool = False  # train on per-pixel standardised inputs, folded back into W, b

    def to_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, TrainConfig] = {
    # The book's settings, unchanged.
    "book": TrainConfig(),
    # Same linear model, better fit: standardised inputs, L2, cosine decay, longer.
    "best": TrainConfig(recipe="best", epochs=60, lr=0.2, weight_decay=3e-4, schedule="cosine", standardize=True),
}


@dataclass
class EpochMetrics:
    epoch: int
    loss: float  # mean training loss over the epoch's minibatches
    train_accuracy: float  # running accuracy over the epoch's minibatches (as the book)
    test_accuracy: float  # accuracy on the 10,000 test images after the epoch
    seconds: float  # wall time of the epoch, evaluation included


@dataclass
class TrainResult:
    net: SoftmaxRegression  # expects flattened pixels scaled to [0, 1]
    history: list[EpochMetrics] = field(default_factory=list)
    seconds: float = 0.0  # training time, data loading excluded


def to_device(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 28, 28) -> float32 (N, 784) in [0, 1] on `device`, labels (N,)."""
    X = split.images.to(device).reshape(len(split.images), -1).float().div_(255.0)
    return X, split.labels.to(device)


def fit(
    config: TrainConfig,
    train_split: Split,
    test_split: Split,
    device: torch.device,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> TrainResult:
    """Train a fresh SoftmaxRegression with `config`; every tensor lives on `device`."""
    if config.schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown schedule {config.schedule!r}")
    generator = torch.Generator().manual_seed(config.seed)  # CPU: same run on any device
    X, y = to_device(train_split, device)
    X_test, y_test = to_device(test_split, device)
    mean, std = _input_statistics(X, config.standardize)
    if config.standardize:
        X, X_test = (X - mean) / std, (X_test - mean) / std

    net = SoftmaxRegression.init(device=device, generator=generator)
    steps_per_epoch = math.ceil(len(X) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    result = TrainResult(net=net)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)  # stays on the device: one sync per epoch
        correct = torch.zeros((), dtype=torch.long, device=device)
        order = torch.randperm(len(X), generator=generator).to(device)
        for step, first in enumerate(range(0, len(X), config.batch_size)):
            batch = order[first : first + config.batch_size]
            X_batch, y_batch = X.index_select(0, batch), y.index_select(0, batch)
            batch_loss, batch_correct = backward(net, X_batch, y_batch)
            loss_sum += batch_loss
            correct += batch_correct
            if config.weight_decay:
                # d/dW of (weight_decay / 2) * ||W||^2 added to the mean loss; sgd divides by the batch size
                net.W.grad.add_(net.W.detach(), alpha=config.weight_decay * len(batch))
            lr = _learning_rate(config, epoch * steps_per_epoch + step, total_steps)
            sgd(net.params, lr, len(batch))
        metrics = EpochMetrics(
            epoch=epoch + 1,
            loss=loss_sum.item() / len(X),
            train_accuracy=correct.item() / len(X),
            test_accuracy=evaluate_accuracy(net, [(X_test, y_test)]),
            seconds=time.perf_counter() - epoch_start,
        )
        result.history.append(metrics)
        if on_epoch:
            on_epoch(metrics)
    result.seconds = time.perf_counter() - start
    result.net = _fold_standardization(net, mean, std)
    return result


def accuracy_on(net: SoftmaxRegression, split: Split, device: torch.device) -> float:
    """Fraction of a split's images that `net` classifies correctly."""
    X, y = to_device(split, device)
    with torch.no_grad():
        return correct_count(net.logits(X), y).item() / len(y)


def _learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    return config.lr


def _input_statistics(X: torch.Tensor, standardize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel mean and scale, (784,) each; zeros and ones when not standardising."""
    if not standardize:
        return torch.zeros(X.shape[1], device=X.device), torch.ones(X.shape[1], device=X.device)
    # + 0.1 keeps the always-black border pixels (std 0) from blowing up
    return X.mean(0), X.std(0) + 0.1


def _fold_standardization(net: SoftmaxRegression, mean: torch.Tensor, std: torch.Tensor) -> SoftmaxRegression:
    """The same linear map on raw [0, 1] pixels: ((X - m) / s) W + b = X (W / s) + (b - (m / s) W)."""
    with torch.no_grad():
        W = net.W / std[:, None]  # (784, 10) / (784, 1)
        b = net.b - (mean / std) @ net.W  # (10,) - (784,) @ (784, 10)
    return SoftmaxRegression(W.detach().clone(), b.detach().clone())
