"""The scratch softmax regression of Dive into Deep Learning 3.6: math only.

The seed's names, hand-written: no nn.Linear, no nn.CrossEntropyLoss, no torch.optim.
Two deliberate departures: softmax subtracts the row maximum, and the training
loss is computed from log-probabilities (log-sum-exp), so neither overflows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

NUM_INPUTS = 28 * 28  # one flattened Fashion-MNIST image
NUM_OUTPUTS = 10  # one score per class


def softmax(X: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax; (N, q) -> (N, q), each row summing to 1."""
    X_exp = torch.exp(X - X.amax(dim=1, keepdim=True))  # largest exponent is 0: no overflow
    partition = X_exp.sum(1, keepdim=True)  # (N, 1)
    return X_exp / partition  # broadcast (N, q) / (N, 1)


def log_softmax(X: torch.Tensor) -> torch.Tensor:
    """Row-wise log-probabilities by log-sum-exp; finite for any finite logits."""
    shifted = X - X.amax(dim=1, keepdim=True)  # (N, q), each row's max is 0
    return shifted - torch.log(torch.exp(shifted).sum(1, keepdim=True))  # sum >= 1: log is finite


def cross_entropy(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The seed's loss on probabilities y_hat (N, q) and labels y (N,) -> (N,).

    A probability that underflowed to 0 is read as the smallest positive float,
    so the loss stays finite; training uses `softmax_cross_entropy` on logits.
    """
    picked = y_hat[torch.arange(len(y_hat), device=y_hat.device), y]  # (N,) probability of the true class
    return -torch.log(picked.clamp_min(torch.finfo(y_hat.dtype).tiny))


def softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of softmax(logits) (N, q) against labels y (N,) -> (N,), never log(0)."""
    return -log_softmax(logits)[torch.arange(len(logits), device=logits.device), y]


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Number of correct predictions (the seed returns a count, not a fraction)."""
    return float(correct_count(y_hat, y))


def correct_count(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`accuracy` as a 0-d tensor that stays on the device (no host sync per batch)."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)  # (N, q) scores -> (N,) class ids
    return (y_hat.type(y.dtype) == y).sum()


class Accumulator:
    """Sums over n variables, as in the book."""

    def __init__(self, n: int):
        self.data = [0.0] * n

    def add(self, *args: float) -> None:
        self.data = [a + float(b) for a, b in zip(self.data, args, strict=True)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx: int) -> float:
        return self.data[idx]


class SoftmaxRegression:
    """The book's `net`: parameters W (784, 10) and b (10,), called on images."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor):
        self.W = W  # (784, 10)
        self.b = b  # (10,)

    @classmethod
    def init(
        cls,
        num_inputs: int = NUM_INPUTS,
        num_outputs: int = NUM_OUTPUTS,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> SoftmaxRegression:
        """W ~ Normal(0, 0.01), b = 0, both requiring gradients, on `device`."""
        W = torch.normal(0.0, 0.01, size=(num_inputs, num_outputs), generator=generator)
        b = torch.zeros(num_outputs)
        # W is stored column-major (a (784, 10) view of (10, 784) memory): CPU BLAS runs
        # X @ W about twice as fast that way; the values and shape are the book's.
        W = W.T.contiguous().to(device).T
        return cls(W.requires_grad_(), b.to(device).requires_grad_())

    @property
    def params(self) -> list[torch.Tensor]:
        return [self.W, self.b]

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """Any (N, ...) with 784 values per image -> (N, 10) scores."""
        return X.reshape((-1, self.W.shape[0])) @ self.W + self.b  # (N, 784) @ (784, 10) + (10,)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, 10), as the seed's `net(X)`."""
        return softmax(self.logits(X))


def evaluate_accuracy(net, data_iter: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Fraction of correct predictions of `net` over the batches of `data_iter`."""
    if isinstance(net, torch.nn.Module):
        net.eval()
    metric = Accumulator(2)  # correct predictions, predictions
    with torch.no_grad():
        for X, y in data_iter:
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def sgd(params: Sequence[torch.Tensor], lr: float, batch_size: int) -> None:
    """Minibatch SGD on summed-loss gradients, as the book: p -= lr * p.grad / batch_size.

    One fused in-place op per parameter; the gradient is then cleared (set to None,
    which the next backward treats as zero, as torch.optim does by default).
    """
    with torch.no_grad():
        for param in params:
            param.sub_(param.grad, alpha=lr / batch_size)
            param.grad = None


def backward(net: SoftmaxRegression, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward pass and the hand-derived gradient of the summed loss, into W.grad and b.grad.

    For L = sum_i softmax_cross_entropy(X_i W + b, y_i), dL/dlogits = softmax(logits) - onehot(y),
    so dL/dW = X^T (P - Y) and dL/db = column sums of (P - Y). The same numbers as
    autograd (tests compare them), at a fraction of the per-step overhead.
    Returns (summed loss, correct predictions) as 0-d tensors on the device.
    """
    with torch.no_grad():
        X = X.reshape((-1, net.W.shape[0]))  # (N, 784)
        true_class = y[:, None]  # (N, 1), for gather/scatter along the class axis
        logits = torch.addmm(net.b, X, net.W)  # (10,) + (N, 784) @ (784, 10) -> (N, 10)
        shifted = logits - logits.amax(dim=1, keepdim=True)  # row max 0: exp cannot overflow
        X_exp = torch.exp(shifted)
        partition = X_exp.sum(1, keepdim=True)  # (N, 1), each >= 1
        loss_sum = (torch.log(partition) - shifted.gather(1, true_class)).sum()  # log-sum-exp of -log p_y
        correct = (shifted.argmax(dim=1) == y).sum()
        dlogits = (X_exp / partition).scatter_(1, true_class, -1.0, reduce="add")  # P - Y, (N, 10)
        net.W.grad = (dlogits.T @ X).T  # (10, N) @ (N, 784) -> (10, 784), seen as (784, 10)
        net.b.grad = dlogits.sum(0)  # (10,)
    return loss_sum, correct
