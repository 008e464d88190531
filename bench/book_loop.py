"""The book's own training loop (D2L 3.6, the seed's code), kept verbatim as the baseline.

torchvision dataset + ToTensor + DataLoader(batch 256, shuffle, 4 workers), the
seed's unstabilised softmax and cross_entropy, autograd and the seed's sgd.
Used only by bench/bench_train.py; it is not part of the product.
"""

from __future__ import annotations

import time

import torch
from torch.utils import data
from torchvision import datasets, transforms


def softmax(X):
    X_exp = torch.exp(X)
    partition = X_exp.sum(1, keepdim=True)
    return X_exp / partition


def cross_entropy(y_hat, y):
    return -torch.log(y_hat[range(len(y_hat)), y])


def accuracy(y_hat, y):
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


class Accumulator:
    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def __getitem__(self, idx):
        return self.data[idx]


def evaluate_accuracy(net, data_iter):
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def load_datasets(root):
    """The book's datasets: ToTensor turns each PIL image into a (1, 28, 28) float tensor on access."""
    trans = transforms.ToTensor()
    mnist_train = datasets.FashionMNIST(root=root, train=True, transform=trans, download=False)
    mnist_test = datasets.FashionMNIST(root=root, train=False, transform=trans, download=False)
    return mnist_train, mnist_test


def train_book(mnist_train, mnist_test, num_epochs=10, lr=0.1, batch_size=256, num_workers=4, seed=0):
    """Train as the book does (train_ch3); returns (seconds, test accuracy), DataLoaders included."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    train_iter = data.DataLoader(mnist_train, batch_size, shuffle=True, num_workers=num_workers)
    test_iter = data.DataLoader(mnist_test, batch_size, shuffle=False, num_workers=num_workers)
    num_inputs, num_outputs = 784, 10
    W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
    b = torch.zeros(num_outputs, requires_grad=True)

    def net(X):
        return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)

    test_acc = 0.0
    for _ in range(num_epochs):
        metric = Accumulator(3)
        for X, y in train_iter:
            y_hat = net(X)
            l = cross_entropy(y_hat, y)
            l.sum().backward()
            sgd([W, b], lr, X.shape[0])
            metric.add(float(l.sum()), accuracy(y_hat, y), y.numel())
        test_acc = evaluate_accuracy(net, test_iter)
    return time.perf_counter() - start, test_acc
