"""Clean 28x28 digits (white on black, as in MNIST) rendered the way people send them: black on
white, white on black, strokes on a transparent canvas, or dark ink on light paper photographed
as a JPEG; any size from 120 to 420 px, off-centre and slightly rotated."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

STYLES = ("black_on_white", "white_on_black", "transparent", "photo")


def render(digit: np.ndarray, style: str, rng: np.random.Generator) -> Image.Image:
    """One rendering, decoded again from the bytes a client would send (PNG, JPEG for photos)."""
    height = int(rng.integers(120, 421))
    width = int(height * rng.uniform(0.8, 1.25))
    side = int(min(height, width) * rng.uniform(0.35, 0.75))
    glyph = Image.fromarray(np.asarray(digit, np.uint8).squeeze(), "L").resize(
        (side, side), Image.Resampling.BILINEAR
    )
    glyph = glyph.rotate(float(rng.uniform(-10, 10)), Image.Resampling.BILINEAR, expand=True)
    canvas = Image.new("L", (width, height), 0)
    canvas.paste(glyph, (int(rng.integers(0, max(1, width - glyph.width))),
                         int(rng.integers(0, max(1, height - glyph.height)))))  # fmt: skip
    ink = np.asarray(canvas, np.float32) / 255
    if style == "white_on_black":
        image = Image.fromarray((ink * 255).astype(np.uint8), "L")
    elif style == "black_on_white":
        image = Image.fromarray(((1 - ink) * 255).astype(np.uint8), "L")
    elif style == "transparent":  # black strokes, as a browser canvas draws them
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[..., 3] = (ink * 255).astype(np.uint8)
        image = Image.fromarray(rgba, "RGBA")
    elif style == "photo":
        shade = 0.85 + 0.15 * np.linspace(0, 1, width)[None, :, None]
        paper = np.array([225, 220, 205], np.float32) * shade + rng.normal(0, 8, (*ink.shape, 3))
        rgb = paper * (1 - ink[..., None]) + np.array([30, 30, 60], np.float32) * ink[..., None]
        image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    else:
        raise ValueError(f"unknown style {style!r}; allowed: {STYLES}")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG" if style == "photo" else "PNG", quality=75)
    return Image.open(io.BytesIO(buffer.getvalue()))


def encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image.format or "PNG", quality=90)
    return buffer.getvalue()
