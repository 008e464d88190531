"""The scratch model against the seed's examples and against torch as the reference."""

import pytest
import torch
import torch.nn.functional as F

from training import Accumulator, SoftmaxRegression, accuracy, cross_entropy, evaluate_accuracy, sgd, softmax
from training.model import backward, log_softmax, softmax_cross_entropy

SEED_Y = torch.tensor([0, 2])
SEED_Y_HAT = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])


def test_seed_cross_entropy_example():
    assert torch.allclose(cross_entropy(SEED_Y_HAT, SEED_Y), torch.tensor([2.3026, 0.6931]), atol=1e-4)


def test_seed_accuracy_example():
    assert accuracy(SEED_Y_HAT, SEED_Y) == 1.0
    assert accuracy(SEED_Y_HAT, SEED_Y) / len(SEED_Y) == 0.5


def test_softmax_rows_are_distributions_and_match_torch():
    X = torch.normal(0, 1, (4, 5), generator=torch.Generator().manual_seed(0))
    X_prob = softmax(X)
    assert torch.allclose(X_prob.sum(1), torch.ones(4))
    assert torch.allclose(X_prob, torch.softmax(X, dim=1), atol=1e-7)


@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_softmax_and_loss_are_finite_for_huge_logits(scale):
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.1]]) * scale
    probabilities = softmax(logits)
    assert torch.isfinite(probabilities).all()
    assert torch.allclose(probabilities.sum(1), torch.ones(2))
    y = torch.tensor([2, 0])  # the least likely classes: the seed's version gives inf/NaN here
    loss = softmax_cross_entropy(logits, y)
    assert torch.isfinite(loss).all()
    assert torch.allclose(loss, F.cross_entropy(logits, y, reduction="none"))
    assert torch.isfinite(cross_entropy(probabilities, y)).all()


def test_seed_softmax_would_overflow_ours_does_not():
    logits = torch.tensor([[100.0, 0.0]])
    naive = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    assert torch.isnan(naive).any()  # why we subtract the row max
    assert torch.allclose(softmax(logits), torch.tensor([[1.0, 0.0]]))


def test_loss_values_and_gradients_match_torch():
    generator = torch.Generator().manual_seed(1)
    logits = torch.normal(0, 3, (32, 10), generator=generator, dtype=torch.float64)
    y = torch.randint(0, 10, (32,), generator=generator)
    ours = logits.clone().requires_grad_()
    reference = logits.clone().requires_grad_()
    softmax_cross_entropy(ours, y).mean().backward()
    F.cross_entropy(reference, y).backward()
    assert torch.allclose(log_softmax(logits), F.log_softmax(logits, dim=1))
    assert torch.allclose(ours.grad, reference.grad, atol=1e-5)


def test_hand_derived_backward_matches_autograd():
    generator = torch.Generator().manual_seed(2)
    net = SoftmaxRegression.init(generator=generator)
    with torch.no_grad():
        net.b += torch.normal(0, 0.1, (10,), generator=generator)
    X = torch.rand(64, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)

    loss = softmax_cross_entropy(net.logits(X), y).sum()
    loss.backward()
    autograd_W, autograd_b = net.W.grad.clone(), net.b.grad.clone()
    net.W.grad = net.b.grad = None

    loss_sum, correct = backward(net, X, y)
    assert torch.allclose(loss_sum, loss.detach(), rtol=1e-6)
    assert correct == (net.logits(X).argmax(1) == y).sum()
    assert torch.allclose(net.W.grad, autograd_W, atol=1e-5)
    assert torch.allclose(net.b.grad, autograd_b, atol=1e-5)


def test_sgd_step_is_the_books_update_and_clears_gradients():
    W = torch.tensor([[1.0, 2.0]], requires_grad=True)
    b = torch.tensor([0.5], requires_grad=True)
    W.grad = torch.tensor([[4.0, -8.0]])
    b.grad = torch.tensor([2.0])
    sgd([W, b], lr=0.1, batch_size=4)  # p -= lr * grad / batch_size
    assert torch.allclose(W.detach(), torch.tensor([[0.9, 2.2]]))
    assert torch.allclose(b.detach(), torch.tensor([0.45]))
    assert W.grad is None and b.grad is None


def test_init_is_the_books():
    net = SoftmaxRegression.init(generator=torch.Generator().manual_seed(0))
    assert net.W.shape == (784, 10) and net.b.shape == (10,)
    assert net.W.requires_grad and net.b.requires_grad
    W = net.W.detach()
    assert abs(float(W.std()) - 0.01) < 0.001 and abs(float(W.mean())) < 0.001
    assert torch.equal(net.b.detach(), torch.zeros(10))
    probabilities = net(torch.rand(3, 1, 28, 28))
    assert probabilities.shape == (3, 10)
    assert torch.allclose(probabilities.sum(1), torch.ones(3))


def test_accumulator_and_evaluate_accuracy():
    metric = Accumulator(2)
    metric.add(1, 2)
    metric.add(3.0, torch.tensor(4))
    assert (metric[0], metric[1]) == (4.0, 6.0)

    def net(X):  # predicts class = first feature
        return torch.nn.functional.one_hot(X[:, 0].long(), 3).float()

    batches = [(torch.tensor([[0.0], [1.0]]), torch.tensor([0, 2])), (torch.tensor([[2.0]]), torch.tensor([2]))]
    assert evaluate_accuracy(net, batches) == pytest.approx(2 / 3)
