"""The novelty detector: how unlike the training garments an image is, fitted on training images only.

A likelihood ratio (Ren et al. 2019) of Gaussian models on a few features of the image: one Gaussian per class,
fitted on garments (the class that explains the image best counts), against one background Gaussian, fitted on
garments spoiled on purpose (shrunk, zoomed, outlined, inverted, shuffled, spliced) and noise. `fit_detector` picks
the PCA size and the threshold on the held-out end of the training set; `NoveltyDetector` is the torch module the
export puts in model.onnx.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from training.data import Split

SIDE = 28  # images are SIDE x SIDE
STRIPE = 2  # rows (columns) per stripe: the picture's extent is measured in stripes
STRIPES = SIDE // STRIPE
Z_SCALE = 64.0  # PCA coefficients travel through the graph's clamp as z / 64 + 1/2, inside [0, 1]
RAMP = 100.0  # steepness of a stripe's "holds part of the picture" ramp (0 to 1 over 0.01 of its pixel sum)
CORRUPTIONS = ("shrunk", "zoomed", "outlined", "inverted", "shuffled", "spliced", "noise", "blobs")


@dataclass(frozen=True)
class NoveltyConfig:
    """Everything that changes the detector. The classifier and its training are not affected."""

    validation_share: float = 1 / 6  # the end of the training set held out (10,000 of 60,000): choice, threshold
    components: tuple[int, ...] = (10, 20, 40)  # PCA sizes tried; the one that scores best on validation is kept
    acceptance: float = 0.95  # share of validation garments accepted: sets the threshold
    background: int = 24_000  # spoiled fitting images the background Gaussian is fitted on (at most)
    ridge: float = 1e-3  # added to every covariance's diagonal (the features are O(1))
    light: float = 0.25  # a stripe whose pixels (0-1) sum to more than this holds part of the picture
    seed: int = 0  # seeds the spoiling


@dataclass
class NoveltyFit:
    """What the manifest records about fitting: sizes, the choice made on validation, the threshold."""

    fit_images: int  # training images the Gaussians were fitted on
    validation_images: int  # held-out training images: the choice and the threshold come from them
    components: int  # the PCA size kept
    selection: dict  # PCA size -> validation AUROC of garments against spoiled validation garments
    threshold: float  # novelty <= threshold is in distribution
    validation_accepted: float  # share of validation images at or under the threshold
    seconds: float
    config: NoveltyConfig


@dataclass
class Gaussians:
    """The fitted statistics, in the feature space of `features` (d = k + 2 dimensions)."""

    mean: torch.Tensor  # (784,) mean fitting image
    basis: torch.Tensor  # (784, k) principal directions, largest variance first
    light: float  # see NoveltyConfig.light
    centres: torch.Tensor  # (J, d): one Gaussian per class, then the background's
    covariances: torch.Tensor  # (J, d, d)
    log_priors: torch.Tensor  # (J - 1,) log share of each class among the fitting images


def stripe_sums() -> torch.Tensor:
    """(784, 2 * STRIPES): X @ this gives the pixel sum of each band of STRIPE rows, then of STRIPE columns."""
    band = torch.kron(torch.eye(STRIPES, dtype=torch.float64), torch.ones(1, STRIPE, dtype=torch.float64))  # (14, 28)
    ones = torch.ones(1, SIDE, dtype=torch.float64)
    return torch.cat([torch.kron(band, ones).T, torch.kron(ones, band).T], 1)


def features(X: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor, light: float) -> torch.Tensor:
    """Images X (N, 784) in [0, 1] -> features (N, k + 2): the PCA coefficients on `basis` (784, k), and the
    shares of horizontal and of vertical stripes that hold part of the picture (a Fashion-MNIST garment spans the
    square; a digit, a letter or a doodle does not). A stripe holds part of it when its pixels sum to more than
    `light`, on a linear ramp RAMP times steeper than the sum."""
    lit = ((X @ stripe_sums().to(X.dtype) - light) * RAMP + 0.5).clamp(0, 1)  # (N, 2 * STRIPES)
    shares = torch.stack([lit[:, :STRIPES].mean(1), lit[:, STRIPES:].mean(1)], 1)
    return torch.cat([(X - mean) @ basis, shares], 1)


class NoveltyDetector(torch.nn.Module):
    """Images (N, 784) in [0, 1] -> novelty (N,): log p_background(f) - log(prior_c p_c(f)) for the class c that
    explains f best, in nats; higher is less like the training garments. f = `features`.

    The same numbers as computing f and the Gaussians' densities one by one, folded into three matrix products so
    that the ONNX graph gains seven nodes beside the classifier's (every node has a fixed cost per request):
      Y = clamp(X P + o, 0, 1)  z / 64 + 1/2 for the PCA coefficients z (|z| <= |X - mean| <= 28: never clamped),
                                then every stripe's lit ramp
      U = Y A + c               every Gaussian's whitened offset (f - m_j) A_j, side by side
      r = (U * U) B + w         r_c = log p_background(f) - log prior_c - log p_c(f), one per class
    and novelty = min_c r_c.
    """

    def __init__(self, gaussians: Gaussians, threshold: float = math.inf):
        super().__init__()
        g = gaussians
        k, J = g.basis.shape[1], len(g.centres)
        classes, d = J - 1, k + 2
        mean, basis = g.mean.double(), g.basis.double()
        projection = torch.cat([basis / Z_SCALE, stripe_sums() * RAMP], 1)  # (784, k + 28)
        offset = torch.cat([0.5 - (mean @ basis) / Z_SCALE, torch.full((2 * STRIPES,), 0.5 - g.light * RAMP).double()])
        # Y (k + 28) -> f (d) = Y T + t: z back from Y, the lit ramps averaged into the two shares
        T = torch.zeros(k + 2 * STRIPES, d, dtype=torch.float64)
        T[:k, :k] = Z_SCALE * torch.eye(k)
        T[k : k + STRIPES, k] = T[k + STRIPES :, k + 1] = 1 / STRIPES
        t = torch.zeros(d, dtype=torch.float64)
        t[:k] = -0.5 * Z_SCALE
        cholesky = torch.linalg.cholesky(g.covariances.double())  # (J, d, d): S_j = C_j C_j^T
        A = torch.linalg.inv(cholesky).mT  # (J, d, d): |(f - m_j) A_j|^2 is f's Mahalanobis distance
        half_log_det = torch.log(torch.diagonal(cholesky, dim1=1, dim2=2)).sum(1)  # (J,) log det(S_j) / 2
        blocks = torch.zeros(J * d, classes, dtype=torch.float64)  # sums each Gaussian's squares into r
        for c in range(classes):
            blocks[c * d : (c + 1) * d, c] = 0.5
        blocks[classes * d :, :] = -0.5  # the background's, in every class's ratio
        ratio_offset = half_log_det[:classes] - half_log_det[classes] - g.log_priors.double()
        centres = torch.einsum("jd,jde->je", t - g.centres.double(), A).reshape(-1)  # (J * d,) (t - m_j) A_j
        self.register_buffer("projection", projection.float())  # (784, k + 28)
        self.register_buffer("offset", offset.float())  # (k + 28,)
        self.register_buffer("whiten", (T @ torch.cat(list(A), 1)).float())  # (k + 28, J * d)
        self.register_buffer("centres", centres.float())  # (J * d,)
        self.register_buffer("blocks", blocks.float())  # (J * d, classes)
        self.register_buffer("ratio_offset", ratio_offset.float())  # (classes,)
        self.threshold = threshold

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = torch.addmm(self.offset, X, self.projection).clamp(0, 1)  # (N, 784) @ (784, k + 28) -> (N, k + 28)
        U = torch.addmm(self.centres, Y, self.whiten)  # (N, J * d)
        return torch.addmm(self.ratio_offset, U * U, self.blocks).amin(1)  # (N, classes) -> (N,)


def split_validation(split: Split, share: float) -> tuple[Split, Split]:
    """(fitting, validation): the last `share` of the training set is held out."""
    held_out = max(1, round(len(split.images) * share))
    first = len(split.images) - held_out
    return Split(split.images[:first], split.labels[:first]), Split(split.images[first:], split.labels[first:])


def pixels(split: Split) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 784) in [0, 1]."""
    return split.images.reshape(len(split.images), -1).float() / 255.0


def spoil(X: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` images (count, 784) that are not garments, made from garments X (N, 784), equal parts of each kind.

    Fashion-MNIST garments are centred, fill the square, are light on black and have one outline; each kind
    breaks that in one way.
    """
    per_kind = -(-count // len(CORRUPTIONS))

    def rand(*shape):
        return torch.rand(*shape, generator=generator)

    def garments():
        return X[torch.randint(len(X), (per_kind,), generator=generator)].reshape(per_kind, 1, SIDE, SIDE)

    made = []
    for kind in CORRUPTIONS:
        if kind in ("shrunk", "zoomed"):  # 0.3-0.7x anywhere in the square, or a 2-4x enlarged part of one
            scale = 0.3 + 0.4 * rand(per_kind) if kind == "shrunk" else 2 + 2 * rand(per_kind)
            theta = torch.zeros(per_kind, 2, 3)  # output -> input coordinates, both in [-1, 1]
            theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
            theta[:, :, 2] = (rand(per_kind, 2) * 2 - 1) * (1 - 1 / scale).abs()[:, None]  # the garment stays in view
            grid = F.affine_grid(theta, [per_kind, 1, SIDE, SIDE], align_corners=False)
            made.append(F.grid_sample(garments(), grid, align_corners=False))
        elif kind == "outlined":  # the gradient magnitude: strokes along the garment's edges
            sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).reshape(1, 1, 3, 3)
            x = garments()
            edges = (F.conv2d(x, sobel, padding=1) ** 2 + F.conv2d(x, sobel.mT, padding=1) ** 2).sqrt()
            made.append(edges / edges.amax((2, 3), keepdim=True).clamp_min(1e-6))
        elif kind == "inverted":  # dark garment on white
            made.append(1 - garments())
        elif kind == "shuffled":  # the garment's pixels in random places
            x = garments().reshape(per_kind, -1)
            made.append(x.gather(1, rand(x.shape).argsort(1)))
        elif kind == "spliced":  # halves of two garments, top/bottom or left/right
            mask = torch.zeros(per_kind, 1, SIDE, SIDE)
            mask[::2, :, : SIDE // 2] = 1
            mask[1::2, :, :, : SIDE // 2] = 1
            made.append(garments() * mask + garments() * (1 - mask))
        elif kind == "noise":  # uniform noise at a random contrast
            made.append(rand(per_kind, 1, SIDE, SIDE) * rand(per_kind, 1, 1, 1))
        else:  # "blobs": smooth noise, 7x7 values interpolated
            blobs = F.interpolate(rand(per_kind, 1, 7, 7), size=(SIDE, SIDE), mode="bicubic", align_corners=False)
            made.append(blobs.clamp(0, 1))
    return torch.cat([m.reshape(per_kind, -1) for m in made])[:count]


def fit_detector(train_split: Split, config: NoveltyConfig = NoveltyConfig()) -> tuple[NoveltyDetector, NoveltyFit]:
    """Fit on the training images only: Gaussians on the first part, choice and threshold on the held-out end."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    fitting, validation = split_validation(train_split, config.validation_share)
    X, X_val = pixels(fitting), pixels(validation)
    background = spoil(X, min(config.background, len(X)), generator)
    background_val = spoil(X_val, len(X_val), generator)  # spoiled held-out garments: judge the PCA sizes
    mean = X.mean(0)
    centred = X - mean
    _, eigenvectors = torch.linalg.eigh(centred.T @ centred)  # ascending; float32 (torch's float64 is far slower)
    largest = max(config.components)
    basis = eigenvectors[:, -largest:].flip(1)  # (784, K), largest variance first
    fitted, spoiled = (features(images, mean, basis, config.light) for images in (X, background))  # (N, K + 2)

    from sklearn.metrics import roc_auc_score  # imported here: slow to import, needed only when fitting

    selection, detectors = {}, {}
    for k in config.components:
        keep = [*range(k), largest, largest + 1]  # the first k coefficients and the two shares
        gaussians = _gaussians(fitted[:, keep], fitting.labels, spoiled[:, keep], config)
        detector = NoveltyDetector(Gaussians(mean, basis[:, :k], config.light, *gaussians))
        scores = torch.cat([detector(X_val), detector(background_val)]).numpy()
        truth = np.r_[np.zeros(len(X_val)), np.ones(len(background_val))]
        selection[k], detectors[k] = float(roc_auc_score(truth, scores)), detector
    best = max(config.components, key=lambda k: (selection[k], -k))  # ties: the smaller model
    detector = detectors[best].eval()
    validation_scores = detector(X_val).numpy()
    detector.threshold = acceptance_threshold(validation_scores, config.acceptance)
    fit = NoveltyFit(
        fit_images=len(X),
        validation_images=len(X_val),
        components=best,
        selection={str(k): round(v, 6) for k, v in selection.items()},
        threshold=detector.threshold,
        validation_accepted=float((validation_scores <= detector.threshold).mean()),
        seconds=time.perf_counter() - start,
        config=config,
    )
    return detector, fit


def acceptance_threshold(scores: np.ndarray, acceptance: float) -> float:
    """The smallest float32 threshold with at least `acceptance` of `scores` at or under it."""
    ordered = np.sort(scores.astype(np.float32))
    return float(ordered[max(0, math.ceil(acceptance * len(ordered)) - 1)])


def _gaussians(garments, labels, spoiled, config: NoveltyConfig):
    """(centres (J, d), covariances (J, d, d), log priors (J - 1,)): one Gaussian per class present in `labels`,
    fitted on the garments' features (N, d), then one on the spoiled garments' features."""
    garments, spoiled = garments.double(), spoiled.double()
    groups = [garments[labels == c] for c in labels.unique().tolist()]
    ridge = config.ridge * torch.eye(garments.shape[1], dtype=torch.float64)
    centres = torch.stack([group.mean(0) for group in [*groups, spoiled]])
    covariances = torch.stack([torch.cov(group.T) + ridge for group in [*groups, spoiled]])
    log_priors = torch.log(torch.tensor([len(group) / len(garments) for group in groups], dtype=torch.float64))
    return centres, covariances, log_priors
