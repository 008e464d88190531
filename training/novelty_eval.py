"""The novelty detector measured beside three baselines on the out-of-distribution sets (training.ood).

Baselines, each with its own threshold accepting 95% of the same validation images: the maximum softmax probability
(Hendrycks & Gimpel 2017), the energy of the logits (Liu et al. 2020), and the Mahalanobis distance on pixels (ridge
chosen by validation likelihood). For every set: AUROC against the Fashion-MNIST test set, and the share flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from training.data import Split
from training.model import SoftmaxRegression
from training.novelty import (
    NoveltyConfig,
    NoveltyDetector,
    NoveltyFit,
    acceptance_threshold,
    fit_detector,
    pixels,
    split_validation,
)
from training.ood import OodSet

METHOD = "likelihood ratio of class Gaussians to a background Gaussian (PCA coefficients, extent in stripes)"
SCORE = (
    "novelty = log p_background(f) - max_c log(prior_c p_c(f)) in nats, f = (PCA coefficients, shares "
    "of lit row and column stripes); higher = less like the training garments"
)
BASELINES = {
    "msp": "maximum softmax probability (Hendrycks & Gimpel 2017): score -max_c p_c",
    "energy": "energy of the logits (Liu et al. 2020, T = 1): score -logsumexp(logits)",
    "mahalanobis": "Mahalanobis distance to the mean fitting image on pixels, covariance + ridge (chosen by "
    "validation likelihood)",
}
METHODS = ("novelty", *BASELINES)
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1)  # tried for the Mahalanobis baseline
ROLES = {
    "tune": "the detector's design (features, spoiling kinds, sizes) was chosen looking at these",
    "report": "kept apart: other digits, other fonts, other photos, other seeds; the figures to quote",
}


@dataclass
class Novelty:
    """A fitted detector and its evaluation: what the export writes into model.onnx, model.json and novelty.png."""

    detector: NoveltyDetector
    fit: NoveltyFit
    summary: dict  # model.json's "novelty" section
    scores: dict = field(repr=False)  # {set label: {method: (n,) scores}}, "test" included: for the picture
    thresholds: dict = field(repr=False)  # {method: threshold}


class Mahalanobis:
    """(x - m)^T (S + ridge I)^-1 (x - m) on pixels in [0, 1]; the ridge maximises the validation likelihood."""

    def __init__(self, X: torch.Tensor, X_val: torch.Tensor):
        self.mean = X.mean(0)
        centred = X - self.mean
        eigenvalues, self.eigenvectors = torch.linalg.eigh(centred.T @ centred / (len(X) - 1))  # float32: fast
        eigenvalues = eigenvalues.clamp_min(0).double()  # the smallest ones are float32 rounding: the ridge rules
        projected = (((X_val - self.mean) @ self.eigenvectors) ** 2).double()  # (N, 784)

        def log_likelihood(ridge):  # mean Gaussian log-likelihood of the validation images, constants left out
            variances = eigenvalues + ridge
            return float(-0.5 * ((projected / variances).sum(1).mean() + torch.log(variances).sum()))

        self.ridge = max(RIDGES, key=log_likelihood)
        self.scale = (1 / (eigenvalues + self.ridge)).float()

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return ((((X - self.mean) @ self.eigenvectors) ** 2) * self.scale).sum(1)


def score_all(detector: NoveltyDetector, net: SoftmaxRegression, mahalanobis: Mahalanobis, X: torch.Tensor) -> dict:
    """{method: (N,) scores, higher = less like a garment} for images X (N, 784) in [0, 1]."""
    with torch.no_grad():
        logits = net.logits(X.to(net.W.device)).cpu()
        return {
            "novelty": detector(X).numpy(),
            "msp": -torch.softmax(logits, 1).amax(1).numpy(),
            "energy": -torch.logsumexp(logits, 1).numpy(),
            "mahalanobis": mahalanobis(X).numpy(),
        }


def evaluate(
    detector: NoveltyDetector,
    fit: NoveltyFit,
    net: SoftmaxRegression,
    train_split: Split,
    test_split: Split,
    sets: tuple[OodSet, ...],
) -> Novelty:
    """Thresholds from the validation images (as the detector's), then AUROC and the flagged share for every set."""
    from sklearn.metrics import roc_auc_score  # imported here: slow to import

    config = fit.config
    fitting, validation = split_validation(train_split, config.validation_share)
    X_val = pixels(validation)
    mahalanobis = Mahalanobis(pixels(fitting), X_val)
    validation_scores = score_all(detector, net, mahalanobis, X_val)
    thresholds = {m: acceptance_threshold(s, config.acceptance) for m, s in validation_scores.items()}
    thresholds["novelty"] = detector.threshold  # the detector's own, the same rule
    test_scores = score_all(detector, net, mahalanobis, pixels(test_split))

    def accepted(scores):
        return {m: round(float((scores[m] <= thresholds[m]).mean()), 4) for m in METHODS}

    scores = {"test": test_scores}
    rows = []
    for ood_set in sets:
        label = f"{ood_set.name} ({ood_set.role})"
        set_scores = score_all(detector, net, mahalanobis, torch.from_numpy(ood_set.images).reshape(-1, 784) / 255)
        scores[label] = set_scores
        truth = np.r_[np.zeros(len(test_split.images)), np.ones(len(ood_set.images))]  # 1: not a garment
        passed = accepted(set_scores)
        row = {"name": ood_set.name, "role": ood_set.role, "source": ood_set.source, "images": len(ood_set.images)}
        row["auroc"] = {m: round(float(roc_auc_score(truth, np.r_[test_scores[m], set_scores[m]])), 4) for m in METHODS}
        row["flagged"] = {m: round(1 - passed[m], 4) for m in METHODS}
        rows.append(row)
    summary = {
        "method": METHOD,
        "score": SCORE,
        "worse": "higher",
        "output": "novelty (float32 [N]); in_distribution (bool [N]) = novelty <= threshold",
        "threshold": detector.threshold,
        "acceptance_target": config.acceptance,
        "validation_accepted": round(fit.validation_accepted, 4),
        "test_accepted": accepted(test_scores)["novelty"],
        "fit": {
            "images": f"training images 0-{fit.fit_images - 1}",
            "validation": f"training images {fit.fit_images}-{fit.fit_images + fit.validation_images - 1}",
            "pca_components": fit.components,
            "selection_auroc": fit.selection,
            "seconds": round(fit.seconds, 3),
        },
        "evaluation": {
            "in_distribution": "Fashion-MNIST test set; AUROC of each set against it",
            "baselines": {**BASELINES, "mahalanobis_ridge": mahalanobis.ridge},
            "thresholds": {m: float(t) for m, t in thresholds.items()},
            "accepted": {"validation": accepted(validation_scores), "test": accepted(test_scores)},
            "roles": ROLES,
            "sets": rows,
        },
    }
    return Novelty(detector, fit, summary, scores, thresholds)


def fit_and_evaluate(
    net: SoftmaxRegression,
    train_split: Split,
    test_split: Split,
    sets: tuple[OodSet, ...],
    config: NoveltyConfig | None = None,
) -> Novelty:
    """Fit the detector on the training images (training.novelty), then evaluate it on `sets`."""
    detector, fit = fit_detector(train_split, config or NoveltyConfig())
    return evaluate(detector, fit, net, train_split, test_split, sets)


def table(summary: dict) -> str:
    """The evaluation as a fixed-width table: a row per set, AUROC / flagged share per method."""
    evaluation = summary["evaluation"]
    names = {"novelty": "novelty (ours)", "msp": "MSP", "energy": "energy", "mahalanobis": "Mahalanobis"}
    header = f"{'set':<18}{'images':>7}" + "".join(f"{names[m]:>20}" for m in METHODS)
    lines = [header, f"{'':<25}" + "".join(f"{'AUROC  flagged':>20}" for _ in METHODS)]
    for row in evaluation["sets"]:
        cells = "".join(f"{row['auroc'][m]:>12.3f}{row['flagged'][m]:>8.1%}" for m in METHODS)
        lines.append(f"{row['name'] + ' (' + row['role'] + ')':<18}{row['images']:>7}{cells}")
    for split in ("validation", "test"):
        accepted = evaluation["accepted"][split]
        cells = "".join(f"{'accepted':>12}{accepted[m]:>8.1%}" for m in METHODS)
        lines.append(f"{'Fashion-MNIST ' + split:<25}{cells}")
    return "\n".join(lines)
