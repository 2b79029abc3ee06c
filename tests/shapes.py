"""A small learnable image-folder dataset made by the tests: coloured geometric shapes at random
positions, sizes and colours, on a random dark background, one subfolder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")


def draw(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(0, 70, 3))
    image = Image.new("RGB", (size, size), background)
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    extent = int(rng.integers(size // 3, size - 4))
    left, top = (int(v) for v in rng.integers(1, size - extent, 2))
    box = (left, top, left + extent, top + extent)
    pen = ImageDraw.Draw(image)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    else:
        pen.polygon(
            [(left, top + extent), (left + extent, top + extent), (left + extent // 2, top)],
            fill=colour,
        )
    return image


def make_shapes(
    root: Path,
    per_class: int = 60,
    size: int = 32,
    seed: int = 0,
    classes: tuple[str, ...] = CLASSES,
    fmt: str = "png",
) -> Path:
    rng = np.random.default_rng(seed)
    for shape in classes:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw(shape, size, rng).save(folder / f"{shape}-{i:03d}.{fmt}")
    return root
