"""The pictures a person looks at after training: curves, a prediction grid, a confusion matrix, the weights.

Each function writes one PNG to the path it is given (the exporter stages and publishes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np


def plot_curves(history: Sequence, path: Path) -> None:
    """Train loss, train accuracy and test accuracy per epoch, as the book's Animator draws them."""
    epochs = [m.epoch for m in history]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.plot(epochs, [m.loss for m in history], "-", label="train loss")
    ax.plot(epochs, [m.train_accuracy for m in history], "m--", label="train acc")
    ax.plot(epochs, [m.test_accuracy for m in history], "g-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.set_xlim(1, max(epochs[-1], 2))
    ax.set_ylim(0.3, 0.9)
    ax.grid(True)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_predictions(
    images: np.ndarray, labels: Sequence[str], predictions: Sequence[str], path: Path, columns: int = 9
) -> None:
    """The seed's predict_ch3: test images (n, 28, 28) titled 'true' over 'predicted'."""
    fig, axes = _image_grid(len(images), columns, cell=(1.3, 1.7))
    for ax, image, true, pred in zip(axes.flat, images, labels, predictions, strict=True):
        ax.imshow(image, cmap="gray")
        ax.set_title(f"{true}\n{pred}", fontsize=7, color="black" if true == pred else "red")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], path: Path) -> None:
    """Confusion matrix (10, 10): rows are true classes, columns predicted, cells counts."""
    fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
    image = ax.imshow(confusion, cmap="Blues")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = confusion.max() / 2
    for i in ticks:
        for j in ticks:
            color = "white" if confusion[i, j] > threshold else "black"
            ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def weights_figure(W: np.ndarray, labels: Sequence[str]) -> plt.Figure:
    """W (784, 10) as ten 28x28 templates, one per class: red pixels vote for the class, blue against.

    One colour scale for all ten, symmetric around 0, so a weight means the same colour in every panel.
    """
    if W.shape != (28 * 28, len(labels)):
        raise ValueError(f"W must be (784, {len(labels)}), got {W.shape}")
    templates = W.T.reshape(len(labels), 28, 28)  # column j of W is class j's template
    limit = float(np.abs(W).max()) or 1.0  # an all-zero W still draws
    fig, axes = _image_grid(len(labels), columns=5, cell=(1.9, 2.1))
    for ax, template, label in zip(axes.flat, templates, labels, strict=False):
        image = ax.imshow(template, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(label, fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="weight")
    return fig


def plot_weights(W: np.ndarray, labels: Sequence[str], path: Path) -> None:
    """What the linear classifier learned: the ten columns of W as images, titled with their labels."""
    fig = weights_figure(W, labels)
    fig.savefig(path, format="png", bbox_inches="tight")  # the colorbar layout leaves wide margins
    plt.close(fig)


def _image_grid(count: int, columns: int, cell: tuple[float, float]) -> tuple[plt.Figure, np.ndarray]:
    """A figure of ceil(count / columns) rows of `columns` panels, cell (width, height) inches each, axes hidden."""
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(cell[0] * columns, cell[1] * rows), dpi=120, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")  # the panels are images; empty ones stay blank
    return fig, axes
