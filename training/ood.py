"""Pictures that are not Fashion-MNIST garments, made offline from what the machine has, to measure the detector.

Every set is (n, 28, 28) float32 pixel values 0-255, light on black, what the model takes. "tune" sets are the ones
the detector's design was chosen on; "report" sets were kept apart (other digits, other fonts, other photos, other
seeds) and are the figures to quote. `build_sets()` makes them all (a few seconds; cached per process).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from serving.preprocess import Limits, Target, image_to_input

SIDE = 28
FONT_DIR = Path("/usr/share/fonts/truetype")
FONT_PACKAGES = "fonts-dejavu-core fonts-liberation2"  # Debian's packages of the fonts below
TUNE_FONTS = tuple(
    f"dejavu/DejaVu{face}.ttf" for face in ("Sans", "Sans-Bold", "Serif", "Serif-Bold", "SansMono", "SansMono-Bold")
)
REPORT_FONTS = tuple(
    f"liberation2/Liberation{face}.ttf"
    for face in ("Sans-Regular", "Sans-Bold", "Serif-Regular", "Serif-Bold", "Mono-Regular", "Mono-Bold")
)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# scikit-image's sample pictures that its wheel carries (others are downloaded on first use: not these)
TUNE_PHOTOS = (
    *("astronaut", "camera", "checkerboard", "clock", "coins", "grass", "horse", "immunohistochemistry"),
    *("microaneurysms", "page", "rocket", "text"),
)
REPORT_PHOTOS = (
    *("brick", "cell", "chelsea", "coffee", "colorwheel", "gravel", "hubble_deep_field", "logo", "moon", "retina"),
    "shepp_logan_phantom",
)
DIGITS_TUNE = 900  # scikit-learn's 1,797 digits: the first 900 tune, the rest report


class OodSetsUnavailable(Exception):
    """Something a set is made from is missing on this machine; the message names what to install."""


@dataclass(frozen=True)
class OodSet:
    name: str
    role: str  # "tune" or "report"
    source: str  # how it was made, in a line
    images: np.ndarray  # (n, 28, 28) float32, 0-255, light on black


@cache
def build_sets() -> tuple[OodSet, ...]:
    """Every set, tune then report."""
    digit_images = digits()
    shapes_made, strokes_made = "ellipses, rectangles, triangles, filled or outlined", "lines, zigzags and arcs"
    noise_made = "uniform, gaussian, salt-and-pepper, blurred"
    through = "through the service's preprocessing"
    return (
        OodSet("digits", "tune", "scikit-learn digits 0-899, laid out as MNIST", digit_images[:DIGITS_TUNE]),
        OodSet("letters", "tune", "A-Z a-z in 6 DejaVu fonts, laid out as MNIST", letters(TUNE_FONTS)),
        OodSet("shapes", "tune", f"{shapes_made} (seed 0)", shapes(500, 0)),
        OodSet("strokes", "tune", f"{strokes_made} (seed 0)", strokes(500, 0)),
        OodSet("photos", "tune", f"crops of 12 scikit-image photos {through} (seed 0)", photos(TUNE_PHOTOS, 20, 0)),
        OodSet("noise", "tune", f"{noise_made} (seed 0)", noise(400, 0)),
        OodSet("digits", "report", "scikit-learn digits 900-1796, laid out as MNIST", digit_images[DIGITS_TUNE:]),
        OodSet("letters", "report", "A-Z a-z in 6 Liberation fonts, laid out as MNIST", letters(REPORT_FONTS)),
        OodSet("shapes", "report", f"{shapes_made} (seed 1)", shapes(500, 1)),
        OodSet("strokes", "report", f"{strokes_made} (seed 1)", strokes(500, 1)),
        OodSet(
            "photos",
            "report",
            f"crops of 11 other scikit-image photos {through} (seed 1)",
            photos(REPORT_PHOTOS, 20, 1),
        ),
        OodSet("faces", "report", f"scikit-image's LFW subset (100 faces, 100 other crops) {through}", faces()),
        OodSet("noise", "report", f"{noise_made} (seed 1)", noise(400, 1)),
    )


def mnist_layout(glyph: np.ndarray) -> np.ndarray:
    """A light-on-black glyph (h, w) -> (28, 28) as MNIST's digits were made: scaled to fit a 20x20 box (aspect
    kept), then placed so its centre of mass is at the centre of the 28x28 square."""
    height, width = glyph.shape
    scale = 20 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(glyph.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    fitted = np.clip(np.asarray(resized), 0, 255)  # LANCZOS rings a little past 0 and 255
    rows, columns = np.indices(fitted.shape)
    mass = fitted.sum() or 1.0
    top = int(np.clip(round(SIDE / 2 - (rows * fitted).sum() / mass), 0, SIDE - size[1]))
    left = int(np.clip(round(SIDE / 2 - (columns * fitted).sum() / mass), 0, SIDE - size[0]))
    square = np.zeros((SIDE, SIDE), dtype=np.float32)
    square[top : top + size[1], left : left + size[0]] = fitted
    return square


def digits() -> np.ndarray:
    """scikit-learn's bundled 8x8 handwritten digits (1,797, 16 gray levels), laid out as MNIST."""
    from sklearn.datasets import load_digits  # imported here: slow to import, needed only for this set

    return np.stack([mnist_layout(image * (255 / 16)) for image in load_digits().images])


def letters(fonts: tuple[str, ...]) -> np.ndarray:
    """A-Z and a-z rendered white on black in each font (paths under FONT_DIR), laid out as MNIST."""
    glyphs = []
    for name in fonts:
        path = FONT_DIR / name
        if not path.is_file():  # checked here: Pillow would look elsewhere for a font of that name
            raise OodSetsUnavailable(f"no font {path}: install Debian's {FONT_PACKAGES}")
        font = ImageFont.truetype(str(path), 64)
        for letter in LETTERS:
            canvas = Image.new("L", (128, 128))
            ImageDraw.Draw(canvas).text((32, 16), letter, fill=255, font=font)
            pixels = np.asarray(canvas, dtype=np.float32)
            rows, columns = np.nonzero(pixels)
            glyphs.append(mnist_layout(pixels[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]))
    return np.stack(glyphs)


def _draw(count: int, seed: int, draw_one) -> np.ndarray:
    """`count` pictures drawn at 4x by draw_one(ImageDraw, rng, scale), box-filtered down to 28x28 (antialiased)."""
    rng = np.random.default_rng(seed)
    scale = 4
    images = []
    for index in range(count):
        canvas = Image.new("L", (SIDE * scale, SIDE * scale))
        draw_one(ImageDraw.Draw(canvas), rng, scale, index)
        images.append(np.asarray(canvas.resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32))
    return np.stack(images)


def shapes(count: int, seed: int) -> np.ndarray:
    """1-3 ellipses, rectangles or triangles per picture, filled or outlined, anywhere, of any size from 5 px."""

    def one(draw, rng, scale, index):
        kind, filled = index % 3, index % 2 == 0
        for _ in range(rng.integers(1, 4)):
            x, y = rng.uniform(0, SIDE - 5, 2)
            w, h = rng.uniform(5, SIDE, 2)
            box = [x * scale, y * scale, min(x + w, SIDE - 1) * scale, min(y + h, SIDE - 1) * scale]
            shade, width = int(rng.integers(100, 256)), int(rng.integers(1, 4) * scale)
            fill, outline = (shade, None) if filled else (None, shade)
            if kind == 0:
                draw.ellipse(box, fill=fill, outline=outline, width=width)
            elif kind == 1:
                draw.rectangle(box, fill=fill, outline=outline, width=width)
            else:
                corners = [tuple(point) for point in rng.uniform(0, SIDE * scale, (3, 2))]
                draw.polygon(corners, fill=fill, outline=outline, width=width)

    return _draw(count, seed, one)


def strokes(count: int, seed: int) -> np.ndarray:
    """1-3 strokes per picture, 1-3 px wide: straight lines, zigzags of up to 6 points, or arcs."""

    def one(draw, rng, scale, index):
        for _ in range(rng.integers(1, 4)):
            shade, width = int(rng.integers(100, 256)), int(rng.integers(1, 4) * scale)
            kind = rng.integers(3)
            if kind == 2:
                x, y = rng.uniform(0, SIDE - 6, 2)
                w, h = rng.uniform(6, SIDE, 2)
                box = [x * scale, y * scale, min(x + w, SIDE - 1) * scale, min(y + h, SIDE - 1) * scale]
                start = rng.uniform(0, 360)
                draw.arc(box, start, start + rng.uniform(60, 300), fill=shade, width=width)
            else:
                points = rng.uniform(1, SIDE - 1, (2 if kind == 0 else rng.integers(3, 7), 2)) * scale
                draw.line([tuple(point) for point in points], fill=shade, width=width, joint="curve")

    return _draw(count, seed, one)


def noise(count: int, seed: int) -> np.ndarray:
    """Four kinds in equal parts: uniform 0-255, gaussian (mean 128, sd 64), salt-and-pepper (5-50% white),
    and uniform noise blurred (gaussian, radius 1-2 px)."""
    rng = np.random.default_rng(seed)
    part = count // 4
    uniform = rng.uniform(0, 255, (part, SIDE, SIDE))
    gaussian = np.clip(rng.normal(128, 64, (part, SIDE, SIDE)), 0, 255)
    salt = (rng.random((part, SIDE, SIDE)) < rng.uniform(0.05, 0.5, (part, 1, 1))) * 255.0
    blurred = []
    for _ in range(count - 3 * part):
        picture = Image.fromarray(rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8))
        blurred.append(np.asarray(picture.filter(ImageFilter.GaussianBlur(rng.uniform(1, 2))), dtype=np.float32))
    return np.concatenate([uniform, gaussian, salt, np.stack(blurred)]).astype(np.float32)


def _as_model_input(pixels: np.ndarray) -> np.ndarray:
    """An 8-bit picture (gray or colour) -> (28, 28) float32 through the service's own preprocessing
    (serving.preprocess: trimmed, fitted, a light background inverted), from the PNG a user would send."""
    picture = Image.fromarray(pixels)
    picture.thumbnail((160, 160))  # a thumbnail: the service shrinks every picture to 28x28 anyway
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=1)
    return image_to_input(buffer.getvalue(), None, Limits(), Target())


def _sample_picture(name: str) -> np.ndarray:
    import skimage.data  # imported here: slow to import, needed only for these sets

    picture = np.asarray(getattr(skimage.data, name)())
    if picture.dtype != np.uint8:  # a boolean silhouette or a float phantom
        picture = picture.astype(np.float64)
        picture = (255 * (picture - picture.min()) / (np.ptp(picture) or 1.0)).astype(np.uint8)
    return picture


def photos(names: tuple[str, ...], crops: int, seed: int) -> np.ndarray:
    """Each of scikit-image's sample photos `names` whole, then crops-1 random crops (30-100% of each side)."""
    rng = np.random.default_rng(seed)
    images = []
    for name in names:
        picture = _sample_picture(name)
        height, width = picture.shape[:2]
        for index in range(crops):
            if index == 0:
                images.append(_as_model_input(picture))
                continue
            h, w = (np.array([height, width]) * rng.uniform(0.3, 1.0, 2)).astype(int)
            top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            images.append(_as_model_input(picture[top : top + h, left : left + w]))
    return np.stack(images)


def faces() -> np.ndarray:
    """scikit-image's 200 LFW pictures (25x25 gray, 0-1) through the service's preprocessing."""
    import skimage.data

    return np.stack(
        [_as_model_input((picture * 255).round().astype(np.uint8)) for picture in skimage.data.lfw_subset()]
    )
