"""Synthetic image folders, seeded and reproducible: data that is not the bundled digits, to judge
the training job's defaults on (bench/defaults.py) and to train in tests.

    python -m training.synthetic letters /tmp/letters [--per-class 150] [--seed 0]

writes one subfolder of PNG images per class, the layout DATASET reads. The same kind, size, seed
and count give the same pixels on every machine with the pinned numpy, Pillow and matplotlib
(the letters are drawn in matplotlib's bundled TrueType fonts, not the system's). Each image has
its own random stream (seed, class, index), so a folder of 100 per class is the first 100 of a
folder of 150, and another seed gives new images of the same kind: a held-out set.

Kinds (KINDS):
- ``letters``: 5 classes (A to E), 64x64 RGB: a letter in one of 16 fonts (sans, serif, mono;
  regular, bold, italic), any colour on a shaded, noisy background of another colour, 50 to 85%
  of the height, rotated up to 20 degrees either way, anywhere in the frame.
- ``textures``: 4 classes (checks, dots, rings, stripes), 32x32 RGB: two random colours in a
  pattern of random scale, angle, phase and edge softness, with pixel noise.
- ``shapes``: 3 classes (circle, square, triangle), 32x32 RGB: one filled shape of random size,
  place and colour on a dark background (the tests' original set; easy).
- ``dials``: 6 classes (h12, h02, ... h10), 48x48 RGB: a round dial whose hand points at 12,
  2, 4, 6, 8 or 10 o'clock (within 10 degrees), random colours, place and size, pixel noise.
  The class is the hand's direction, so rotating an image too far changes its class: a set on
  which augmentation can hurt (the others are drawn with the very shifts and rotations it adds).
- ``noise``: 5 classes of uniform random pixels, 32x32 RGB: nothing to learn; what the
  training job's chance gate must refuse.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = ("A", "B", "C", "D", "E")
TEXTURES = ("checks", "dots", "rings", "stripes")
CLASSES = ("circle", "square", "triangle")  # shapes
NOISE_CLASSES = tuple(f"class{i}" for i in range(5))
DIAL_HOURS = ("h12", "h02", "h04", "h06", "h08", "h10")  # dials: where the hand points

# matplotlib's bundled fonts: the same files wherever the pinned matplotlib is installed
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)


def font_path(filename: str) -> Path:
    spec = importlib.util.find_spec("matplotlib")  # its location, without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the letters are drawn in matplotlib's bundled fonts: install it")
    return Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / filename


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _contrasting(rng: np.random.Generator, other: np.ndarray, at_least: float) -> np.ndarray:
    """A random colour whose grey level differs from `other`'s by at least `at_least`."""
    grey = np.array([0.299, 0.587, 0.114], np.float32)
    while True:
        colour = _colour(rng)
        if abs(float(grey @ colour) - float(grey @ other)) >= at_least:
            return colour


def _to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def letter(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    background = _colour(rng)
    ink = _contrasting(rng, background, 70)
    # shaded background: a linear ramp of up to +-20 grey levels across a random direction
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:size, 0:size] / size - 0.5
    ramp = (np.cos(angle) * xs + np.sin(angle) * ys)[..., None] * rng.uniform(-40, 40)
    pixels = background + ramp + rng.normal(0, 6, (size, size, 3))

    font = ImageFont.truetype(str(font_path(FONT_FILES[rng.integers(len(FONT_FILES))])), 2 * size)
    mask = Image.new("L", (3 * size, 3 * size), 0)
    ImageDraw.Draw(mask).text((1.5 * size, 1.5 * size), name, fill=255, font=font, anchor="mm")
    mask = mask.crop(mask.getbbox()).rotate(
        rng.uniform(-20, 20), Image.Resampling.BICUBIC, expand=True
    )
    height = max(4, int(size * rng.uniform(0.5, 0.85)))
    width = max(4, min(size, int(height * mask.width / mask.height)))
    mask = mask.resize((width, height), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (size, size), 0)
    place = (int(rng.integers(0, size - width + 1)), int(rng.integers(0, size - height + 1)))
    canvas.paste(mask, place)
    alpha = np.asarray(canvas, np.float32)[..., None] / 255
    return _to_image(pixels * (1 - alpha) + ink * alpha)


def texture(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    first = _colour(rng)
    second = _contrasting(rng, first, 60)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(0.15, 0.45) * size  # pixels per cycle
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    u = (np.cos(angle) * xs + np.sin(angle) * ys) * 2 * np.pi / period + rng.uniform(0, 2 * np.pi)
    v = (-np.sin(angle) * xs + np.cos(angle) * ys) * 2 * np.pi / period + rng.uniform(0, 2 * np.pi)
    if name == "stripes":
        field = np.sin(u)
    elif name == "checks":
        field = np.sin(u) * np.sin(v) * 2
    elif name == "dots":
        field = np.cos(u) + np.cos(v) - 1.2  # round blobs on a lattice
    elif name == "rings":
        cy, cx = rng.uniform(-0.5, 1.5, 2) * size  # sometimes outside: arcs
        field = np.sin(np.hypot(xs - cx, ys - cy) * 2 * np.pi / period)
    else:
        raise ValueError(f"unknown texture {name!r}; allowed: {', '.join(TEXTURES)}")
    share = 1 / (1 + np.exp(-field * rng.uniform(3, 12)))[..., None]  # soft or hard edges
    pixels = first * (1 - share) + second * share + rng.normal(0, 16, (size, size, 3))
    return _to_image(pixels)


def shape(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(0, 70, 3))
    image = Image.new("RGB", (size, size), background)
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    extent = int(rng.integers(size // 3, size - 4))
    left, top = (int(v) for v in rng.integers(1, size - extent, 2))
    box = (left, top, left + extent, top + extent)
    pen = ImageDraw.Draw(image)
    if name == "circle":
        pen.ellipse(box, fill=colour)
    elif name == "square":
        pen.rectangle(box, fill=colour)
    else:  # a triangle, also for any other class name (tests make up extra classes)
        pen.polygon(
            [(left, top + extent), (left + extent, top + extent), (left + extent // 2, top)],
            fill=colour,
        )
    return image


def dial(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A round dial whose hand points at the class's hour (within 10 degrees), on a face and
    background of random colours, the dial's place and size varying a little, pixel noise."""
    background = _colour(rng)
    face = _contrasting(rng, background, 40)
    hand = _contrasting(rng, face, 90)
    scale = 4  # drawn large, then reduced: smooth edges
    big = size * scale
    image = Image.new("RGB", (big, big), tuple(int(v) for v in background))
    pen = ImageDraw.Draw(image)
    radius = big * rng.uniform(0.36, 0.46)
    cx, cy = (big / 2 + rng.uniform(-0.04, 0.04, 2) * big).tolist()
    pen.ellipse(
        (cx - radius, cy - radius, cx + radius, cy + radius), fill=tuple(int(v) for v in face)
    )
    angle = np.deg2rad(DIAL_HOURS.index(name) * 360 / len(DIAL_HOURS) + rng.uniform(-10, 10))
    tip = (cx + 0.85 * radius * np.sin(angle), cy - 0.85 * radius * np.cos(angle))
    pen.line((cx, cy, *tip), fill=tuple(int(v) for v in hand), width=int(big * 0.06))
    pen.ellipse(
        (cx - big * 0.05, cy - big * 0.05, cx + big * 0.05, cy + big * 0.05),
        fill=tuple(int(v) for v in hand),
    )
    pixels = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), np.float32)
    return _to_image(pixels + rng.normal(0, 8, pixels.shape))


def noise(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


@dataclass(frozen=True)
class Kind:
    classes: tuple[str, ...]
    size: int
    draw: Callable[[str, int, np.random.Generator], Image.Image]


KINDS = {
    "letters": Kind(LETTERS, 64, letter),
    "textures": Kind(TEXTURES, 32, texture),
    "shapes": Kind(CLASSES, 32, shape),
    "dials": Kind(DIAL_HOURS, 48, dial),
    "noise": Kind(NOISE_CLASSES, 32, noise),
}


def image(kind: str, label: int, index: int, seed: int = 0, size: int | None = None):
    """Image `index` of class `label` (an index into KINDS[kind].classes)."""
    spec = KINDS[kind]
    rng = np.random.default_rng([seed, label, index])
    return spec.draw(spec.classes[label], size or spec.size, rng)


def make_folder(
    kind: str, root: Path, per_class: int = 150, seed: int = 0, size: int | None = None
) -> Path:
    """root/CLASS/CLASS-0000.png ...: `per_class` images of each class of `kind`."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    root = Path(root)
    for label, name in enumerate(KINDS[kind].classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image(kind, label, i, seed, size).save(folder / f"{name}-{i:04d}.png")
    return root


def make_shapes(
    root: Path,
    per_class: int = 60,
    size: int = 32,
    seed: int = 0,
    classes: tuple[str, ...] = CLASSES,
    fmt: str = "png",
) -> Path:
    """The tests' shapes folder: one random stream for the whole folder (the set tests have
    always trained on), any of the shape classes, any image format Pillow writes."""
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape(name, size, rng).save(folder / f"{name}-{i:03d}.{fmt}")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("out", type=Path, help="the folder to write (one subfolder per class)")
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, help="side in pixels (default: the kind's own)")
    args = parser.parse_args(argv)
    root = make_folder(args.kind, args.out, args.per_class, args.seed, args.size)
    classes = KINDS[args.kind].classes
    print(f"{root}: {len(classes)} classes ({', '.join(classes)}), {args.per_class} images each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
