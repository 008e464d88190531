"""weights.png: the ten columns of W drawn as 28x28 templates, labelled, on one symmetric colour scale."""

import numpy as np
import pytest
from PIL import Image

from training import plots
from training.data import LABELS


def template_weights() -> np.ndarray:
    """W (784, 10) whose class j template is 0 everywhere but one bright pixel at row j+5, column 2j+3."""
    W = np.zeros((784, 10), dtype=np.float32)
    for j in range(10):
        W[(j + 5) * 28 + 2 * j + 3, j] = 1.0
    return W


def test_each_panel_is_its_class_column_reshaped_to_28x28():
    W = template_weights()
    fig = plots.weights_figure(W, LABELS)
    try:
        panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
        assert [ax.get_title() for ax in panels] == list(LABELS)  # reading order = class id
        for j, ax in enumerate(panels):
            shown = np.asarray(ax.images[0].get_array())
            assert shown.shape == (28, 28)
            np.testing.assert_array_equal(shown, W[:, j].reshape(28, 28))  # row-major, as the images were flattened
            assert np.argwhere(shown == 1.0).tolist() == [[j + 5, 2 * j + 3]]
    finally:
        plots.plt.close(fig)


def test_one_colour_scale_symmetric_around_zero_for_all_panels():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.01, (784, 10)).astype(np.float32)
    W[100, 4] = -0.3  # the largest magnitude is negative: the scale is still +-0.3
    fig = plots.weights_figure(W, LABELS)
    try:
        limits = [ax.images[0].get_clim() for ax in fig.axes if ax.images and ax.get_title()]
        assert len(limits) == 10
        assert all(low == pytest.approx(-0.3) and high == pytest.approx(0.3) for low, high in limits)
        assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 1  # one colorbar for all
    finally:
        plots.plt.close(fig)


def test_all_zero_weights_still_draw(tmp_path):
    plots.plot_weights(np.zeros((784, 10), dtype=np.float32), LABELS, tmp_path / "weights.png")
    with Image.open(tmp_path / "weights.png") as picture:
        assert picture.format == "PNG"


def test_wrong_shape_is_refused_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"W must be \(784, 10\), got \(10, 784\)"):
        plots.weights_figure(np.zeros((10, 784), dtype=np.float32), LABELS)


def test_plot_weights_writes_a_wide_png_and_closes_its_figure(tmp_path):
    before = plots.plt.get_fignums()
    plots.plot_weights(template_weights(), LABELS, tmp_path / "weights.png")
    assert plots.plt.get_fignums() == before  # no figure left open in a long training job
    with Image.open(tmp_path / "weights.png") as picture:
        assert picture.format == "PNG" and picture.width > picture.height > 200
        pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
    red = (pixels[..., 0] > 150) & (pixels[..., 2] < 100)
    assert red.sum() >= 10  # the ten positive pixels are drawn in red (RdBu_r), at least one screen pixel each
