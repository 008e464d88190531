"""The out-of-distribution sets: what the model takes (28x28, 0-255, light on black), seeded, made offline, tune and
report kept apart."""

import io
import socket

import numpy as np
import pytest
from PIL import Image

from serving.preprocess import Limits, Target, image_to_input
from training import ood


def check_model_input(images: np.ndarray, count: int) -> None:
    assert images.shape == (count, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 255 and images.max() > 100  # the model's range, not blank


def dark_border(images: np.ndarray) -> float:
    """Mean of the outermost pixels: light on black keeps it low."""
    return float(np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1).mean())


def test_mnist_layout_fits_a_20_pixel_box_centred_by_mass():
    glyph = np.zeros((40, 10), dtype=np.float32)
    glyph[:, :4] = 255  # a bar, heavier on its left
    laid_out = ood.mnist_layout(glyph)
    rows, columns = np.nonzero(laid_out > 1)
    assert rows.max() - rows.min() + 1 == 20 and columns.max() - columns.min() + 1 <= 5  # aspect kept
    centre = [float((np.indices((28, 28))[axis] * laid_out).sum() / laid_out.sum()) for axis in (0, 1)]
    assert centre == pytest.approx([14, 14], abs=0.5)


def test_digits_are_sklearns_laid_out_as_mnist():
    digits = ood.digits()
    check_model_input(digits, 1797)
    lit = digits > 1
    heights = lit.any(2).sum(1)
    widths = lit.any(1).sum(1)
    assert heights.max() <= 20 and widths.max() <= 20 and (np.maximum(heights, widths) >= 19).mean() > 0.95
    assert dark_border(digits) < 1  # a 20x20 box centred by mass leaves the border black


def test_letters_are_both_cases_in_each_font():
    letters = ood.letters(ood.REPORT_FONTS[:2])
    check_model_input(letters, 2 * 52)
    assert dark_border(letters) < 1
    assert not np.array_equal(letters[:52], letters[52:])  # two fonts, two looks
    assert not np.array_equal(letters[0], letters[26])  # "A" is not "a"


def test_a_missing_font_names_the_packages_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(ood, "FONT_DIR", tmp_path)
    with pytest.raises(ood.OodSetsUnavailable, match="fonts-dejavu-core fonts-liberation2"):
        ood.letters(ood.TUNE_FONTS)


@pytest.mark.parametrize("builder", [ood.shapes, ood.strokes, ood.noise])
def test_drawn_and_noise_sets_are_seeded(builder):
    first = builder(40, 0)
    check_model_input(first, 40)
    np.testing.assert_array_equal(first, builder(40, 0))
    assert not np.array_equal(first, builder(40, 1))


def test_shapes_and_strokes_are_light_on_black_and_not_garment_sized():
    for images in (ood.shapes(60, 0), ood.strokes(60, 0)):
        assert dark_border(images) < 40
        lit = (images > 25).mean((1, 2))
        assert lit.min() > 0 and lit.mean() < 0.5


def test_noise_has_its_four_kinds():
    noise = ood.noise(40, 0)
    uniform, gaussian, salt, blurred = noise.reshape(4, 10, 28, 28)
    assert 100 < uniform.mean() < 155 and set(np.unique(salt)) <= {0.0, 255.0}
    assert abs(gaussian.mean() - 128) < 10
    neighbours = [np.abs(np.diff(part, axis=2)).mean() for part in (uniform, blurred)]
    assert neighbours[1] < neighbours[0] / 2  # blurred: neighbouring pixels close


def test_photos_go_through_the_services_preprocessing():
    photos = ood.photos(("camera", "coffee"), 3, 0)
    check_model_input(photos, 6)
    camera = ood._sample_picture("camera")  # the whole photo comes first
    thumbnail = Image.fromarray(camera)
    thumbnail.thumbnail((160, 160))
    buffer = io.BytesIO()
    thumbnail.save(buffer, "PNG")
    np.testing.assert_allclose(photos[0], image_to_input(buffer.getvalue(), None, Limits(), Target()), atol=1e-3)
    assert not np.array_equal(photos[1], photos[0])  # a crop


def test_faces_are_the_lfw_subset():
    check_model_input(ood.faces(), 200)


def test_every_set_builds_offline(monkeypatch):
    """No font, photo or digit comes from the network: build every set with sockets refused."""

    def refuse(*_args, **_kwargs):
        raise OSError("network access during an offline build")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    sets = ood.build_sets.__wrapped__()  # not the cached copy: build them here, offline
    assert {(s.name, s.role) for s in sets} == {
        *((name, "tune") for name in ("digits", "letters", "shapes", "strokes", "photos", "noise")),
        *((name, "report") for name in ("digits", "letters", "shapes", "strokes", "photos", "faces", "noise")),
    }
    for s in sets:
        check_model_input(s.images, len(s.images))
        assert len(s.images) >= 200 and s.source


def test_tune_and_report_sets_are_apart(ood_sets):
    by_key = {(s.name, s.role): s for s in ood_sets}
    assert len(by_key["digits", "tune"].images) + len(by_key["digits", "report"].images) == 1797
    assert not set(ood.TUNE_FONTS) & set(ood.REPORT_FONTS)
    assert not set(ood.TUNE_PHOTOS) & set(ood.REPORT_PHOTOS)
    for name in ("digits", "letters", "shapes", "strokes", "photos", "noise"):
        tune = {image.tobytes() for image in by_key[name, "tune"].images}
        report = {image.tobytes() for image in by_key[name, "report"].images}
        assert not tune & report, name
