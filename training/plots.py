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


def plot_novelty(scores: dict, thresholds: dict, path: Path) -> None:
    """The novelty detector on every set: its score's distribution per set with the threshold (top), and ROC curves
    of the score and the baselines for each reported set against the Fashion-MNIST test set (below).

    scores: {set label: {method: (n,) scores}}, with "test" the Fashion-MNIST test set; thresholds: {method: value}.
    """
    from sklearn.metrics import roc_curve  # imported here: slow to import, needed only for this picture

    labels = list(scores)
    reported = [label for label in labels if label.endswith("(report)")]
    columns = 4
    rows = -(-len(reported) // columns)
    # inches, fixed: tight_layout would cost seconds here. Panels, the gaps between rows, margins.
    top_height, roc_height, gap, above, below = 0.3 * len(labels) + 0.6, 2.4, 0.8, 0.35, 0.5
    height = top_height + rows * (roc_height + gap) + above + below
    fig = plt.figure(figsize=(3.2 * columns, height), dpi=110)
    grid = fig.add_gridspec(
        1 + rows,
        columns,
        height_ratios=[top_height] + [roc_height] * rows,
        hspace=gap / ((top_height + rows * roc_height) / (1 + rows)),  # a share of the mean panel height
        wspace=0.3,
        left=1.7 / (3.2 * columns),  # room for the set names
        right=0.98,
        top=1 - above / height,
        bottom=below / height,
    )
    ax = fig.add_subplot(grid[0, :])
    ax.boxplot([scores[label]["novelty"] for label in labels], orientation="horizontal", whis=(1, 99), showfliers=False)
    ax.set_yticks(range(1, len(labels) + 1), ["Fashion-MNIST test" if s == "test" else s for s in labels])
    ax.invert_yaxis()
    ax.set_xscale("symlog")
    ax.axvline(thresholds["novelty"], color="red", linestyle="--")
    ax.set_title("novelty per set; red dashed line: the threshold (accepts 95% of the validation garments)", fontsize=9)
    ax.set_xlabel("novelty (nats; higher = less like a garment); boxes: quartiles, whiskers: 1st-99th percentile")
    styles = {"novelty": ("C3", 2.0), "msp": ("C0", 1.0), "energy": ("C1", 1.0), "mahalanobis": ("C2", 1.0)}
    for index, label in enumerate(reported):
        roc = fig.add_subplot(grid[1 + index // columns, index % columns])
        for method, (color, width) in styles.items():
            truth = np.r_[np.zeros(len(scores["test"][method])), np.ones(len(scores[label][method]))]
            values = np.r_[scores["test"][method], scores[label][method]]
            false_positive, true_positive, _ = roc_curve(truth, values)
            roc.plot(false_positive, true_positive, color=color, linewidth=width, label=method)
            at_threshold = values > thresholds[method]
            roc.plot(at_threshold[truth == 0].mean(), at_threshold[truth == 1].mean(), "o", color=color, markersize=4)
        roc.set_title(label.removesuffix(" (report)"), fontsize=9)
        roc.set_xlim(-0.02, 1)
        roc.set_ylim(0, 1.02)
        roc.tick_params(labelsize=7)
        roc.set_xlabel("test garments flagged", fontsize=7)
        roc.set_ylabel("set flagged", fontsize=7)
        if index == 0:
            roc.legend(fontsize=7, loc="lower right")
    fig.savefig(path, format="png")
    plt.close(fig)
