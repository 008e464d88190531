"""Real Fashion-MNIST test images dressed as the pictures people send: a plain 28x28 PNG, a garment centred
on a wide canvas with margins, a product photo (dark on white), and that photo as a sideways-stored JPEG
with an EXIF orientation. Each takes (28, 28) uint8 pixels (light garment on black) and returns file bytes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from harness.images import encode, png

PHOTO_SIDE = 280  # the garment enlarged ten times, as a photo would show it


def enlarged(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels).resize((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.BICUBIC)


def wide_canvas_png(pixels: np.ndarray, size: tuple[int, int] = (420, 280)) -> bytes:
    """The enlarged garment in the middle of a black canvas wider than it (width, height)."""
    canvas = Image.new("L", size, 0)
    canvas.paste(enlarged(pixels), ((size[0] - PHOTO_SIDE) // 2, (size[1] - PHOTO_SIDE) // 2))
    return encode(canvas, "PNG")


def product_photo(pixels: np.ndarray) -> Image.Image:
    """Dark garment on white, 280x280: the negative of the enlarged garment."""
    return Image.fromarray(255 - np.asarray(enlarged(pixels)))


def product_photo_png(pixels: np.ndarray) -> bytes:
    return encode(product_photo(pixels), "PNG")


def exif_rotated_jpeg(pixels: np.ndarray) -> bytes:
    """The product photo stored sideways, as a phone held sideways writes it, with EXIF Orientation 6
    ("rotate 90 degrees clockwise to display"): only a decoder that honours the tag sees it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = product_photo(pixels).transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    return encode(sideways, "JPEG", quality=90, exif=exif)


VARIANTS = {
    "plain 28x28 PNG": png,
    "420x280 canvas, black margins": wide_canvas_png,
    "product photo, dark on white 280x280": product_photo_png,
    "EXIF-rotated JPEG product photo": exif_rotated_jpeg,
}
