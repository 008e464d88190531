"""Preprocessing: every format and mode, EXIF, transparency, inversion, aspect ratio, bombs."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from harness.images import encode, garment
from serving.preprocess import InputError, Limits, Target, array_to_input, check_range, image_to_input

LIMITS = Limits()
TARGET = Target()  # 28x28, 0-255: what the exported model declares
CLEAN = garment(3, np.random.default_rng(0), noise=0)  # a band of 200 on exact black
NOISY = garment(6, np.random.default_rng(1))  # background noise 0-39


@pytest.mark.parametrize(
    "fmt, options, tolerance",
    [
        ("PNG", {}, 0),
        ("GIF", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("JPEG", {"quality": 95}, 6),  # lossy: mean abs error in gray levels
    ],
)
def test_formats_decode_to_the_same_pixels(fmt, options, tolerance):
    data = encode(Image.fromarray(NOISY), fmt, **options)
    pixels = image_to_input(data, None, LIMITS, TARGET)
    assert pixels.shape == (28, 28) and pixels.dtype == np.float32
    assert np.abs(pixels - NOISY).mean() <= tolerance + 1e-6


def rgba_photo(alpha_background: int) -> Image.Image:
    """A dark garment (the band, 55) on a background whose RGB is black but alpha says how visible."""
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    band = CLEAN > 0
    rgba[band, :3] = (255 - CLEAN[band])[:, None]  # dark garment, as photographed
    rgba[..., 3] = np.where(band, 255, alpha_background)
    return Image.fromarray(rgba, "RGBA")


@pytest.mark.parametrize(
    "make_image",
    [
        pytest.param(lambda: Image.fromarray(CLEAN), id="L"),
        pytest.param(lambda: Image.fromarray(np.stack([CLEAN] * 3, axis=-1)), id="RGB"),
        pytest.param(lambda: Image.fromarray(np.stack([CLEAN] * 3 + [np.full_like(CLEAN, 255)], -1)), id="RGBA"),
        pytest.param(lambda: Image.fromarray(np.stack([CLEAN] * 3, axis=-1)).convert("CMYK"), id="CMYK"),
        pytest.param(lambda: Image.fromarray(CLEAN).convert("P"), id="P"),
        pytest.param(lambda: Image.fromarray(CLEAN).convert("LA"), id="LA"),
        pytest.param(lambda: Image.fromarray(CLEAN.astype(np.uint16) * 257), id="I;16"),
        pytest.param(lambda: Image.fromarray(CLEAN.astype(np.int32)), id="I"),
        pytest.param(lambda: Image.fromarray(CLEAN > 0), id="1"),
    ],
)
def test_modes_become_the_same_grayscale(make_image):
    image = make_image()
    fmt = "TIFF" if image.mode in ("CMYK", "I", "1") else "PNG"
    pixels = image_to_input(encode(image, fmt), None, LIMITS, TARGET)
    expected = (CLEAN > 0) * 255.0 if image.mode == "1" else CLEAN
    np.testing.assert_allclose(pixels, expected, atol=1.0)


def test_sixteen_bit_png_is_scaled_to_eight_bit_range():
    image = Image.fromarray(CLEAN.astype(np.uint16) * 257)
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert image_to_input(data, None, LIMITS, TARGET).max() == pytest.approx(200, abs=0.5)


def test_transparency_is_composited_as_white_paper_then_inverted():
    pixels = image_to_input(encode(rgba_photo(alpha_background=0), "PNG"), None, LIMITS, TARGET)
    np.testing.assert_allclose(pixels, CLEAN, atol=1.0)  # light garment on black, like training


def test_palette_transparency_is_composited_too():
    photo = rgba_photo(alpha_background=0).convert("RGB").convert("P")
    photo.info["transparency"] = photo.getpixel((0, 0))  # the background's palette index
    pixels = image_to_input(encode(photo, "GIF", transparency=photo.getpixel((0, 0))), None, LIMITS, TARGET)
    assert pixels[0, 0] == 0 and pixels[9, 10] > 150  # background black, garment light


def test_exif_orientation_is_honoured():
    stored = Image.fromarray(np.rot90(NOISY, k=1).copy())  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    for fmt, options in (("JPEG", {"quality": 100}), ("PNG", {}), ("TIFF", {})):
        pixels = image_to_input(encode(stored, fmt, exif=exif, **options), None, LIMITS, TARGET)
        assert np.abs(pixels - NOISY).mean() < 3, fmt


def test_a_light_background_is_inverted_automatically_and_overridable():
    photo = 255 - CLEAN  # a product photo: dark garment on white
    data = encode(Image.fromarray(photo), "PNG")
    np.testing.assert_array_equal(image_to_input(data, None, LIMITS, TARGET), CLEAN)
    np.testing.assert_array_equal(image_to_input(data, False, LIMITS, TARGET), photo)
    dark = encode(Image.fromarray(CLEAN), "PNG")
    np.testing.assert_array_equal(image_to_input(dark, None, LIMITS, TARGET), CLEAN)  # already the convention
    np.testing.assert_array_equal(image_to_input(dark, True, LIMITS, TARGET), 255 - CLEAN)


def garment_box(pixels: np.ndarray, level: float = 100) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), inclusive, of the pixels brighter than `level`."""
    rows, columns = np.flatnonzero((pixels > level).any(1)), np.flatnonzero((pixels > level).any(0))
    return rows[0], rows[-1], columns[0], columns[-1]


def on_canvas(pixels: np.ndarray, size: tuple[int, int], margin: int, noise: float = 0, seed: int = 0) -> np.ndarray:
    """`pixels` (light on black) enlarged 10x in the middle of a (width, height) canvas of gray level `margin`
    (light margins get a dark garment, as in a product photo), plus uniform noise of +-`noise` levels."""
    garment = np.asarray(Image.fromarray(pixels).resize((280, 280), Image.Resampling.BICUBIC), dtype=np.float64)
    width, height = size
    canvas = np.full((height, width), float(margin))
    top, left = (height - 280) // 2, (width - 280) // 2
    canvas[top : top + 280, left : left + 280] = 255 - garment if margin > 127 else garment
    canvas += np.random.default_rng(seed).uniform(-noise, noise, canvas.shape)
    return canvas.clip(0, 255).astype(np.uint8)


SHIRT = np.zeros((28, 28), dtype=np.uint8)
SHIRT[0:28, 6:22] = 180  # a garment spanning the height, 16 wide (Fashion-MNIST's framing)
SHIRT[2:12, 2:26] = 200  # sleeves: the widest part, 24 wide


@pytest.mark.parametrize(
    "size, margin, noise, fmt",
    [
        pytest.param((420, 280), 0, 0, "PNG", id="wide-dark"),
        pytest.param((420, 280), 255, 0, "PNG", id="wide-light"),
        pytest.param((280, 460), 0, 0, "PNG", id="tall-dark"),
        pytest.param((280, 460), 250, 0, "PNG", id="tall-light"),
        pytest.param((420, 420), 0, 12, "JPEG", id="noisy-dark-margins-jpeg"),
        pytest.param((420, 300), 245, 12, "JPEG", id="noisy-light-margins-jpeg"),
    ],
)
def test_margins_are_trimmed_as_fashion_mnist_was_made(size, margin, noise, fmt):
    data = encode(on_canvas(SHIRT, size, margin, noise), fmt, **({"quality": 75} if fmt == "JPEG" else {}))
    pixels = image_to_input(data, None, LIMITS, TARGET)
    assert pixels.shape == (28, 28)
    # the garment fills the height again, centred, 24 wide (give or take the pixel the enlargement blurred)
    assert np.abs(np.subtract(garment_box(pixels), garment_box(SHIRT))).max() <= 1, garment_box(pixels)
    assert np.abs(pixels - SHIRT).mean() < 12  # light on black: a light margin was negated
    assert pixels[14, 0] < 40 and pixels[14, 27] < 40  # the sides are background


def test_a_wide_garment_fills_the_width_and_is_centred_vertically():
    trousers = np.zeros((60, 120), dtype=np.uint8)
    trousers[10:50, 20:100] = 255  # an 80x40 garment in a 120x60 picture: trimmed to 80x40, then 28x14
    pixels = image_to_input(encode(Image.fromarray(trousers), "PNG"), None, LIMITS, TARGET)
    assert garment_box(pixels) == (7, 20, 0, 27)  # 14 rows, 7 above and below (an odd pixel would go above)


def test_an_alpha_cut_out_is_trimmed_to_the_garment():
    cut_out = np.zeros((300, 500, 4), dtype=np.uint8)
    cut_out[10:290, 110:390, :3] = 40  # a dark 280x280 garment ...
    cut_out[10:290, 110:390, 3] = 255  # ... opaque, on a transparent canvas (white paper once composited)
    pixels = image_to_input(encode(Image.fromarray(cut_out, "RGBA"), "PNG"), None, LIMITS, TARGET)
    assert pixels.min() > 180  # the garment fills the square, light once negated


@pytest.mark.parametrize("noise", [0, 10])
def test_a_picture_that_is_all_background_gets_an_answer(noise):
    blank = on_canvas(np.zeros((28, 28), np.uint8), (420, 300), 250, noise)
    pixels = image_to_input(encode(blank, "PNG"), None, LIMITS, TARGET)
    assert pixels.shape == (28, 28) and np.isfinite(pixels).all()
    assert pixels.max() < 40  # no garment to find: the background, negated to black


def test_a_28x28_picture_keeps_its_margins():
    small = np.zeros((28, 28), dtype=np.uint8)
    small[10:18, 10:18] = 200  # an 8x8 garment with wide margins: already framed as the model expects
    pixels = image_to_input(encode(Image.fromarray(small), "PNG"), None, LIMITS, TARGET)
    np.testing.assert_array_equal(pixels, small)


def test_large_photos_are_reduced_to_28x28():
    photo = np.full((900, 600, 3), 250, dtype=np.uint8)
    photo[100:800, 150:450] = 30  # a dark garment on white
    pixels = image_to_input(encode(Image.fromarray(photo), "JPEG", quality=90), None, LIMITS, TARGET)
    assert pixels.shape == (28, 28)
    assert pixels[14, 14] > 180 and pixels[14, 1] < 30  # inverted: light garment, black margin


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_claiming(width: int, height: int) -> bytes:
    """A 1 kB PNG whose header claims width x height gray pixels: decoding it would allocate them all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (8_000, 6_000)])
def test_decompression_bombs_are_refused_before_decoding(width, height):
    with pytest.raises(InputError) as caught:
        image_to_input(png_header_claiming(width, height), None, Limits(max_pixels=40_000_000), TARGET)
    assert caught.value.status == 413 and caught.value.code == "image_too_large"


def test_the_pixel_limit_is_configurable():
    data = encode(Image.fromarray(np.zeros((100, 100), dtype=np.uint8)), "PNG")
    with pytest.raises(InputError, match="10000 pixels; the limit is 9999"):
        image_to_input(data, None, Limits(max_pixels=9_999), TARGET)
    assert image_to_input(data, None, Limits(max_pixels=10_000), TARGET).shape == (28, 28)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty_image"),
        (b"definitely not an image", "bad_image"),
        (encode(Image.fromarray(NOISY), "PNG")[:60], "bad_image"),  # truncated
        (encode(Image.fromarray(NOISY), "JPEG")[:200], "bad_image"),
    ],
    ids=["empty", "garbage", "truncated-png", "truncated-jpeg"],
)
def test_broken_images_are_client_errors(data, code):
    with pytest.raises(InputError) as caught:
        image_to_input(data, None, LIMITS, TARGET)
    assert caught.value.status == 400 and caught.value.code == code


def test_pixel_arrays_square_or_flat():
    np.testing.assert_array_equal(array_to_input(NOISY.tolist(), None, TARGET), NOISY)
    np.testing.assert_array_equal(array_to_input(NOISY.reshape(-1).tolist(), None, TARGET), NOISY)


@pytest.mark.parametrize(
    "values, status, code",
    [
        ([[0] * 28] * 27, 422, "wrong_shape"),
        ([0] * 783, 422, "wrong_shape"),
        ([[0] * 28] * 27 + [[0] * 27], 422, "wrong_shape"),
        ([[float("nan")] * 28] * 28, 400, "bad_pixels"),
        ([[256] * 28] * 28, 400, "bad_pixels"),
        ([[-1] * 28] * 28, 400, "bad_pixels"),
        ([["white"] * 28] * 28, 400, "bad_pixels"),
    ],
)
def test_bad_pixel_arrays(values, status, code):
    with pytest.raises(InputError) as caught:
        array_to_input(values, None, TARGET)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_the_models_declared_side_and_range_are_followed():
    unit_range = Target(side=14, value_range=(0.0, 1.0))  # a model that takes 14x14 pixels in 0-1
    pixels = image_to_input(encode(Image.fromarray(CLEAN), "PNG"), None, LIMITS, unit_range)
    assert pixels.shape == (14, 14) and pixels.min() >= 0.0 and 0.5 < pixels.max() <= 1.0
    np.testing.assert_allclose(
        array_to_input((CLEAN[::2, ::2] / 255.0).tolist(), None, unit_range), CLEAN[::2, ::2] / 255.0, atol=1e-6
    )
    with pytest.raises(InputError, match="0-1"):
        array_to_input(CLEAN[::2, ::2].tolist(), None, unit_range)


@pytest.mark.parametrize(
    ("bad", "says"),
    [(np.nan, "finite"), (np.inf, "finite"), (-np.inf, "finite"), (255.5, "in 0-255; got 0 to 255.5"),
     (-1.0, "in 0-255; got -1 to 200")],
)  # fmt: skip
@pytest.mark.parametrize("at", [0, 783])
def test_check_range_finds_one_bad_value_anywhere(bad, says, at):
    pixels = np.full(784, 200.0, dtype=np.float32)
    pixels[0 if at else 783] = 0.0
    pixels[at] = bad
    with pytest.raises(InputError, match=says.replace("(", r"\(")) as refused:
        check_range(pixels, Target())
    assert refused.value.code == "bad_pixels"


def test_check_range_passes_the_whole_range_and_nothing():
    check_range(np.array([0.0, 255.0, 17.5], dtype=np.float32), Target())
    check_range(np.zeros(0, dtype=np.float32), Target())
    check_range(np.array([-1.0, 1.0]), Target(value_range=(-1.0, 1.0)))
