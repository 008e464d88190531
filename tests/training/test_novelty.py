"""The novelty detector: the folded module computes the Gaussians' likelihood ratio; fitting sees only the fitting
images, picks its PCA size and threshold on the held-out end; the threshold accepts 95% of the validation images."""

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from harness.publish import synthetic_split
from training.data import Split
from training.novelty import (
    CORRUPTIONS,
    Gaussians,
    NoveltyConfig,
    NoveltyDetector,
    acceptance_threshold,
    features,
    fit_detector,
    pixels,
    split_validation,
    spoil,
)


def random_gaussians(k: int, classes: int, seed: int) -> Gaussians:
    generator = torch.Generator().manual_seed(seed)
    d = k + 2
    basis, _ = torch.linalg.qr(torch.randn(784, k, generator=generator, dtype=torch.float64))
    factors = torch.randn(classes + 1, d, d, generator=generator, dtype=torch.float64)
    return Gaussians(
        mean=torch.rand(784, generator=generator) * 0.5,
        basis=basis.float(),
        light=0.25,
        centres=torch.randn(classes + 1, d, generator=generator, dtype=torch.float64),
        covariances=factors @ factors.mT / d + 0.1 * torch.eye(d, dtype=torch.float64),
        log_priors=torch.log_softmax(torch.randn(classes, generator=generator, dtype=torch.float64), 0),
    )


def reference_novelty(g: Gaussians, X: torch.Tensor) -> torch.Tensor:
    """log p_background(f) - max_c log(prior_c p_c(f)), one Gaussian at a time with torch.distributions."""
    f = features(X, g.mean, g.basis, g.light).double()
    log_p = torch.stack([MultivariateNormal(m, S).log_prob(f) for m, S in zip(g.centres, g.covariances, strict=True)])
    return log_p[-1] - (log_p[:-1] + g.log_priors[:, None]).amax(0)


@pytest.mark.parametrize("k, classes", [(10, 10), (20, 3)])
def test_the_folded_module_is_the_likelihood_ratio_of_its_gaussians(k, classes):
    g = random_gaussians(k, classes, seed=k)
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.random((64, 784), dtype=np.float32))
    X[:16] *= torch.from_numpy(rng.random((16, 784)) < 0.01)  # sparse pictures: many stripes unlit
    X[16:20] = 0  # black
    detector = NoveltyDetector(g)
    with torch.no_grad():
        ours = detector(X).double()
    expected = reference_novelty(g, X)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-4, atol=1e-3 * float(expected.abs().max()))


def test_features_are_pca_coefficients_and_lit_stripe_shares():
    mean = torch.zeros(784)
    basis = torch.eye(784)[:, :2]  # the first two pixels
    image = torch.zeros(28, 28)
    image[0, 0], image[0, 1] = 0.5, 0.25  # one lit stripe each way: rows 0-1 and columns 0-1
    image[10:14, 6] = 1.0  # rows 10-13 (two stripes), column 6 (one stripe)
    f = features(image.reshape(1, 784), mean, basis, light=0.25)
    assert f.shape == (1, 4)
    z, rows, columns = f[0, :2], f[0, 2], f[0, 3]
    assert z.tolist() == [0.5, 0.25]
    assert rows.item() == pytest.approx(3 / 14) and columns.item() == pytest.approx(2 / 14)
    image[20, 20] = 0.25  # a stripe summing to exactly `light`: half way up its ramp
    assert features(image.reshape(1, 784), mean, basis, light=0.25)[0, 2].item() == pytest.approx(3.5 / 14)


def test_validation_is_the_end_of_the_training_set():
    split = synthetic_split(600, 0)
    fitting, validation = split_validation(split, 1 / 6)
    assert (len(fitting.images), len(validation.images)) == (500, 100)
    assert torch.equal(validation.images, split.images[500:]) and torch.equal(fitting.labels, split.labels[:500])
    sixty = Split(torch.zeros(60000, 1, dtype=torch.uint8), torch.zeros(60000, dtype=torch.long))
    assert [len(part.images) for part in split_validation(sixty, NoveltyConfig().validation_share)] == [50000, 10000]


@pytest.mark.parametrize("count", [20, 100, 171, 10000])
def test_the_threshold_accepts_the_share_asked_and_no_more_than_needed(count):
    scores = np.random.default_rng(count).normal(size=count).astype(np.float32)
    threshold = acceptance_threshold(scores, 0.95)
    accepted = (scores <= threshold).mean()
    assert accepted >= 0.95 and accepted - 1 / count < 0.95  # one image fewer would be under 95%
    assert np.float32(threshold) == threshold  # a float32 value: the graph compares float32 scores with it
    assert acceptance_threshold(np.arange(1, 101, dtype=np.float32), 0.95) == 95.0


def test_spoiled_garments_are_pictures_of_every_kind_in_equal_parts():
    X = pixels(synthetic_split(200, 0))
    made = spoil(X, 160, torch.Generator().manual_seed(0))
    assert made.shape == (160, 784) and made.dtype == torch.float32
    assert made.min() >= 0 and made.max() <= 1
    parts = made.reshape(len(CORRUPTIONS), -1, 784)  # equal parts, in CORRUPTIONS order
    for kind, part in zip(CORRUPTIONS, parts, strict=True):
        assert part.abs().sum() > 0, kind
        assert not any(torch.equal(image, garment) for image in part for garment in X), kind
    inverted = parts[CORRUPTIONS.index("inverted")]
    assert inverted.mean() > 0.5 > X.mean()  # light background
    assert torch.equal(made, spoil(X, 160, torch.Generator().manual_seed(0)))  # seeded
    assert not torch.equal(made, spoil(X, 160, torch.Generator().manual_seed(1)))


@pytest.fixture(scope="module")
def fitted():
    split = synthetic_split(1200, 0)
    return split, *fit_detector(split)


def test_fitting_keeps_the_best_pca_size_on_validation_and_a_threshold_accepting_95_percent(fitted):
    split, detector, fit = fitted
    assert (fit.fit_images, fit.validation_images) == (1000, 200)
    assert set(fit.selection) == {"10", "20", "40"} and all(0.5 < auroc <= 1 for auroc in fit.selection.values())
    assert fit.selection[str(fit.components)] == max(fit.selection.values())
    assert detector.projection.shape[1] == fit.components + 28  # k PCA directions, 14 + 14 stripe sums
    _, validation = split_validation(split, fit.config.validation_share)
    with torch.no_grad():
        scores = detector(pixels(validation)).numpy()
    assert fit.threshold == detector.threshold == acceptance_threshold(scores, 0.95)
    assert fit.validation_accepted == (scores <= fit.threshold).mean() >= 0.95


def test_garments_pass_and_what_is_not_a_garment_is_flagged(fitted):
    _, detector, _ = fitted
    held_out = pixels(synthetic_split(500, 7))  # new synthetic garments (bright bands on noise)
    rng = np.random.default_rng(0)
    band = held_out[:100].reshape(-1, 28, 28)
    not_garments = {
        "uniform noise": torch.from_numpy(rng.random((100, 784), dtype=np.float32)),
        "black": torch.zeros(10, 784),
        "inverted garments": 1 - held_out[:100],
        "garments turned sideways": band.transpose(1, 2).reshape(-1, 784),  # vertical bands: never seen
    }
    with torch.no_grad():
        assert (detector(held_out) <= detector.threshold).float().mean() > 0.9
        for name, images in not_garments.items():
            assert (detector(images) > detector.threshold).all(), name


def test_the_gaussians_see_only_the_fitting_images():
    """Changing the validation images changes the threshold, never the fitted statistics."""
    config = NoveltyConfig(components=(10,))  # one size: nothing is chosen on validation but the threshold
    split = synthetic_split(600, 0)
    images = split.images.clone()
    images[500:] = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8))
    detector, fit = fit_detector(split, config)
    other, other_fit = fit_detector(Split(images, split.labels), config)
    for name, buffer in detector.named_buffers():
        assert torch.equal(buffer, dict(other.named_buffers())[name]), name
    assert other_fit.threshold > fit.threshold  # noise in validation: a far looser threshold
