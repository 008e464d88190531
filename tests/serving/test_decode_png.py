"""The libspng path for plain PNGs: the same pixels as Pillow's, for exactly the files it takes; every other
file (and every broken one) goes to Pillow, which decodes or explains it."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from PIL import Image

from harness.images import encode
from serving.preprocess import InputError, Limits, decode, decode_image, decode_plain_png, to_grayscale

LIMITS = Limits()
RNG = np.random.default_rng(11)


def pillow_pixels(data: bytes) -> np.ndarray:
    return to_grayscale(decode_image(data, LIMITS, 28))


@pytest.mark.parametrize("shape", [(28, 28), (31, 17), (1, 1), (300, 200)])
@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("interlaced", [False, True])
def test_plain_pngs_decode_to_pillows_pixels(shape, mode, interlaced):
    pixels = RNG.integers(0, 256, size=(*shape, 3) if mode == "RGB" else shape, dtype=np.uint8)
    data = encode(Image.fromarray(pixels, mode), "PNG", interlace=interlaced) if interlaced else \
        encode(Image.fromarray(pixels, mode), "PNG")  # fmt: skip
    fast = decode_plain_png(data, LIMITS)
    assert fast is not None and fast.dtype == np.float32 and fast.shape == shape
    np.testing.assert_array_equal(fast, pillow_pixels(data))  # exactly: Pillow's integer luma for RGB


def png_with_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """`data` with one more chunk right after IHDR (8 signature bytes + 25 of IHDR)."""
    chunk = len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")
    return data[:33] + chunk + data[33:]


GRAY = RNG.integers(0, 256, size=(28, 28), dtype=np.uint8)
PLAIN = encode(GRAY, "PNG")


@pytest.mark.parametrize(
    "name, data",
    [
        ("palette", encode(Image.fromarray(GRAY).convert("P"), "PNG")),
        ("rgba", encode(Image.fromarray(np.dstack([GRAY] * 4), "RGBA"), "PNG")),
        ("gray-alpha", encode(Image.fromarray(np.dstack([GRAY] * 2), "LA"), "PNG")),
        ("16-bit", encode(Image.fromarray(GRAY.astype(np.uint16) * 257), "PNG")),
        ("transparency", encode(Image.fromarray(GRAY), "PNG", transparency=0)),
        ("exif", png_with_chunk(PLAIN, b"eXIf", Image.Exif().tobytes())),
        ("jpeg", encode(GRAY, "JPEG")),
    ],
)
def test_other_files_go_to_pillow(name, data):
    assert decode_plain_png(data, LIMITS) is None
    assert decode(data, LIMITS, 28).shape == (28, 28)  # and Pillow decodes them


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_transparent_colour_is_white_paper(mode):
    pixels = np.zeros((28, 28, 3) if mode == "RGB" else (28, 28), np.uint8)
    pixels[10:20, 10:20] = 200
    transparent = (0, 0, 0) if mode == "RGB" else 0  # the black background is the transparent colour
    decoded = decode(encode(Image.fromarray(pixels, mode), "PNG", transparency=transparent), LIMITS, 28)
    assert (decoded[:10] == 255).all() and (decoded[10:20, 10:20] == 200).all()


@pytest.mark.parametrize(
    "name, damage",
    [
        ("bad-crc", lambda data: data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:]),
        ("truncated", lambda data: data[: len(data) // 2]),
    ],
)
def test_a_broken_png_is_left_to_pillow_which_refuses_it(name, damage):
    data = damage(PLAIN)
    assert decode_plain_png(data, LIMITS) is None
    with pytest.raises(InputError) as refused:
        decode(data, LIMITS, 28)
    assert refused.value.code == "bad_image"


def test_a_png_without_its_end_chunk_is_left_to_pillow_which_reads_it():
    data = PLAIN[:-12]  # IEND cut off: Pillow reads the image data before it
    assert decode_plain_png(data, LIMITS) is None
    np.testing.assert_array_equal(decode(data, LIMITS, 28), GRAY)


def test_the_pixel_limit_is_checked_before_libspng_decodes():
    with pytest.raises(InputError) as refused:
        decode_plain_png(PLAIN, Limits(max_pixels=28 * 28 - 1))
    assert refused.value.code == "image_too_large" and "784 pixels" in refused.value.message
