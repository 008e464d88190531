"""Image bytes or pixel arrays -> the model's input: (side, side) float32, light garment on black.

Decoding, EXIF orientation, grayscale, transparency, trimming, fitting into a square and
inverting a light background happen here and nowhere else. The side and value range
come from the model artifact (`Target`); flattening and scaling are inside the graph.

A picture that is not already side x side is prepared the way Fashion-MNIST was made from
product photos (Xiao et al. 2017, section 2): edges close to the corner colour trimmed off,
the longest edge resized to 28, centred on the square, a light background negated. A side x
side picture is taken as it is.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pyspng
from PIL import Image, ImageOps, UnidentifiedImageError

from serving.errors import ServiceError

WHITE = 255  # work is done on the 8-bit scale, then mapped to the model's value range
# Trimming: a pixel belongs to the garment when it is further from the background than TRIM_TOLERANCE gray
# levels, or than TRIM_NOISE times the margin's own noise where that is larger (the border's median absolute
# deviation, robust to a garment touching the border: JPEG ringing, sensor noise, paper texture); a row or
# column belongs to the garment when more than TRIM_SPECK of its pixels do (stray specks do not stop the trim).
TRIM_TOLERANCE = 8
TRIM_NOISE = 6
TRIM_SPECK = 0.01
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNK = struct.Struct(">I4s")  # a PNG chunk's length and type; its data and a CRC-32 follow
IHDR = struct.Struct(">IIBBBBB")  # width, height, bit depth, colour type, compression, filter, interlace
LIBSPNG_COLOUR_TYPES = (0, 2)  # 8-bit grayscale and RGB: decoded by libspng; every other PNG by Pillow


class InputError(ServiceError):
    """The input cannot become a model input; `code` says why (serving.errors maps it to a status)."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 40_000_000  # width x height of one decoded image (decompression bombs)


@dataclass(frozen=True)
class Target:
    """What the model takes, as its artifact says: side x side grayscale values in value_range."""

    side: int = 28
    value_range: tuple[float, float] = (0.0, 255.0)

    def from_8bit(self, pixels: np.ndarray) -> np.ndarray:
        low, high = self.value_range
        return pixels if (low, high) == (0.0, 255.0) else low + pixels * ((high - low) / WHITE)

    def to_8bit(self, values: np.ndarray) -> np.ndarray:
        low, high = self.value_range
        return values if (low, high) == (0.0, 255.0) else (values - low) * (WHITE / (high - low))


def decode(data: bytes, limits: Limits, side: int) -> np.ndarray:
    """Any image file -> (H, W) float32 grayscale 0-255, upright. The common PNGs by libspng, the rest by Pillow."""
    if not data:
        raise InputError("empty_image", "the image is empty (0 bytes)")
    pixels = decode_plain_png(data, limits)
    return pixels if pixels is not None else to_grayscale(decode_image(data, limits, side))


def decode_plain_png(data: bytes, limits: Limits) -> np.ndarray | None:
    """An 8-bit grayscale or RGB PNG without transparency or EXIF -> (H, W) float32, decoded by libspng (pyspng,
    several times faster than Pillow on small images); None for any other file, which Pillow then decodes
    (and explains, when it is broken). Checked as Pillow checks a PNG: every chunk whole with its CRC-32, and
    the pixel limit before decoding. RGB becomes gray by Pillow's own integer ITU-R 601 luma, so both paths
    give the same pixels."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    header, position, end_found = None, len(PNG_SIGNATURE), False
    while not end_found and position + CHUNK.size <= len(data):
        length, kind = CHUNK.unpack_from(data, position)
        end = position + CHUNK.size + length + 4  # + the CRC
        if end > len(data) or zlib.crc32(data[position + 4 : end - 4]) != int.from_bytes(data[end - 4 : end]):
            return None
        if kind == b"IHDR" and length == IHDR.size:
            header = IHDR.unpack_from(data, position + CHUNK.size)
        elif kind in (b"tRNS", b"eXIf"):  # transparency to composite, an orientation to apply: Pillow does both
            return None
        end_found = kind == b"IEND"
        position = end
    if header is None or not end_found or header[2] != 8 or header[3] not in LIBSPNG_COLOUR_TYPES:
        return None
    width, height = header[:2]
    _check_pixels(width, height, limits)
    try:
        pixels = pyspng.load(data)  # (H, W) uint8, or (H, W, 3)
    except RuntimeError:  # what libspng refuses, Pillow reports
        return None
    if pixels.ndim == 3:  # Pillow's RGB -> L: (R 19595 + G 38470 + B 7471 + 0x8000) >> 16
        rgb = pixels.astype(np.uint32)
        pixels = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return pixels.astype(np.float32)


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_pixels:
        raise InputError(
            "image_too_large",
            f"the image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}",
        )


def decode_image(data: bytes, limits: Limits, side: int) -> Image.Image:
    """Any format Pillow reads -> an upright image, pixels not yet converted. Refuses bombs before decoding."""
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        _check_pixels(*image.size, limits)
        image.draft("L", (side * 2, side * 2))  # JPEG: decode at reduced scale, far less work
        image.load()  # decode now: truncated or corrupt data fails here
        if "exif" in image.info or image.format == "TIFF":  # only these can carry an orientation
            ImageOps.exif_transpose(image, in_place=True)  # EXIF orientation -> upright pixels
        return image
    except InputError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own, far larger, limit
        raise InputError("image_too_large", f"the image has too many pixels ({error})") from error
    except UnidentifiedImageError as error:
        raise InputError("bad_image", "the data is not an image format this service can decode") from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # Pillow's errors for broken files
        raise InputError("bad_image", f"the image could not be decoded: {error}") from error


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any mode -> (H, W) float32 in 0-255; transparent areas become white paper."""
    if "transparency" in image.info and image.mode in ("P", "L", "RGB"):  # a colour or palette entry: alpha
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
        return np.asarray(Image.alpha_composite(paper, rgba).convert("L"), dtype=np.float32)
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit integer or float samples
        samples = np.asarray(image, dtype=np.float32)
        if image.mode.startswith("I;16") or samples.max(initial=0) > 255:
            samples = samples * (255.0 / 65535.0)  # 16-bit range to 8-bit range
        return np.clip(samples, 0, 255)
    if image.mode != "L":
        image = image.convert("RGB").convert("L")  # CMYK, YCbCr, P, 1 ... through RGB, ITU-R 601 luma
    return np.asarray(image, dtype=np.float32)


def frame(pixels: np.ndarray) -> np.ndarray:
    """The outermost pixels, (2H + 2W - 4,)."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def border_level(pixels: np.ndarray) -> float:
    """Median of the outermost pixels: the background's brightness."""
    outermost = frame(pixels)
    outermost.sort()  # a sort of ~100 values beats np.median's generic path several times over
    return float(outermost[len(outermost) // 2])


def trim(pixels: np.ndarray, background: float) -> np.ndarray:
    """(H, W) -> (h, w), the box around the garment: rows and columns close to the background cut off.

    Fashion-MNIST's garments touch the square on their longest side (the median real test image spans
    all 28 rows or columns), so margins around a photographed garment are cut before resizing.
    A picture that is all background has nothing to trim to and is returned whole.
    """
    noise = float(np.median(np.abs(frame(pixels) - background)))
    far = np.abs(pixels - background) > max(TRIM_TOLERANCE, TRIM_NOISE * noise)  # (H, W) bool: the garment
    rows = np.flatnonzero(far.sum(axis=1) > TRIM_SPECK * pixels.shape[1])
    columns = np.flatnonzero(far.sum(axis=0) > TRIM_SPECK * pixels.shape[0])
    if rows.size == 0 or columns.size == 0:
        return pixels
    return pixels[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def fit_square(pixels: np.ndarray, background: float, side: int) -> np.ndarray:
    """(H, W) -> (side, side): the picture centred on a square of the background, then resized to side.

    Padding before resizing keeps the aspect and the centring exact (no short side rounded to whole
    pixels, no garment half a pixel off centre), which scores better on real test images dressed as
    photos than resizing first and padding the 28x28.
    """
    height, width = pixels.shape
    if (height, width) == (side, side):
        return pixels
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32))  # mode "F": no 8-bit rounding
    if (factor := max(height, width) // (8 * side)) > 1:
        image = image.reduce(factor)  # box average: the padded square stays small for any photo
        width, height = image.size
    longest = max(height, width)
    square = np.full((longest, longest), background, dtype=np.float32)
    top, left = (longest - height) // 2, (longest - width) // 2
    square[top : top + height, left : left + width] = np.asarray(image)
    resized = Image.fromarray(square).resize((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.clip(np.asarray(resized), 0, 255)


def to_model_input(pixels: np.ndarray, invert: bool | None, target: Target) -> np.ndarray:
    """(H, W) grayscale 0-255 -> (side, side) float32 in Fashion-MNIST's convention and the model's range.

    invert=None decides from the border: a light background (a product photo, dark
    garment on white) is inverted so the garment is light on black, as in training.
    A side x side picture keeps its margins: it is already framed as the model expects.
    """
    background = border_level(pixels)
    if invert is None:
        invert = background > 127.5
    if pixels.shape != (target.side, target.side):
        pixels = trim(pixels, background)
    square = fit_square(pixels, background, target.side)
    return target.from_8bit(WHITE - square if invert else square)


def image_to_input(data: bytes, invert: bool | None, limits: Limits, target: Target) -> np.ndarray:
    """Encoded image bytes -> (side, side) float32 model input."""
    return to_model_input(decode(data, limits, target.side), invert, target)


def array_to_input(values, invert: bool | None, target: Target) -> np.ndarray:
    """A side x side (or flat) list of pixel values in the model's range -> (side, side) float32 model input."""
    side, (low, high) = target.side, target.value_range
    try:
        pixels = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError) as error:
        if "inhomogeneous" in str(error) or "sequence" in str(error):
            raise InputError("wrong_shape", f"pixel rows must all have {side} values: {error}") from error
        raise InputError("bad_pixels", f"pixel values must be numbers from {low:g} to {high:g}") from error
    if pixels.shape == (side * side,):
        pixels = pixels.reshape(side, side)
    if pixels.shape != (side, side):
        message = f"a pixel array must be {side}x{side} or flat {side * side}; got shape {pixels.shape}"
        raise InputError("wrong_shape", message)
    check_range(pixels, target)
    return to_model_input(target.to_8bit(pixels).astype(np.float32), invert, target)


def check_range(pixels: np.ndarray, target: Target) -> None:
    """Pixel values the model takes as they are: finite, within the artifact's value range."""
    if not pixels.size:
        return
    low, high = target.value_range
    smallest, largest = pixels.min(), pixels.max()  # a NaN anywhere makes both NaN, and fails both comparisons
    if smallest >= low and largest <= high:
        return
    if not (np.isfinite(smallest) and np.isfinite(largest)):
        raise InputError("bad_pixels", "pixel values must be finite numbers (no NaN or Infinity)")
    message = f"pixel values must be in {low:g}-{high:g}; got {smallest:g} to {largest:g}"
    raise InputError("bad_pixels", message)
