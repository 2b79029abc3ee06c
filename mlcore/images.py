"""How an image becomes the model's input: the same code when training reads an image folder and
when the function answers {"images": [...]}, as the manifest records it.

Every model takes pixel values 0..255 in its input shape (H, W, C), C = 1 (grey) or 3 (RGB);
the scaling it needs is inside the converted graph. The manifest's `input` says how an image is
prepared (`preprocessing.policy`):

- ``digit``: what MNIST's own preparation did, for handwritten digits as people send them
  (a photo of ink on paper, a drawing on a transparent canvas, black on white or white on
  black, any size, off-centre): a light background is inverted, the background level is
  subtracted, the ink is cropped, its longer side fitted into the inner 20/28 of the field
  keeping the aspect ratio, and the digit centred by its centre of mass.
- ``stretch``: resized to H x W (what Keras' image_dataset_from_directory does by default).
- ``letterbox``: fitted inside H x W keeping the aspect ratio, padded with black.
- ``center_crop``: the shorter side fitted, the centre cropped.

Before any of them: the EXIF orientation is applied, and transparency is composited onto a
background that contrasts with what is drawn. numpy and Pillow only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

COLORS = {"grey": 1, "rgb": 3}
POLICIES = ("digit", "stretch", "letterbox", "center_crop")
DEFAULT_POLICY = "stretch"  # what a manifest without a policy (schema 1) was served with
DIGIT_BOX = 20 / 28  # MNIST: a 20x20 box in the 28x28 field
MAX_WORKING_SIDE = 512  # digit policy: larger images are reduced first (the result is 28 px)


class BlankImage(ValueError):
    """Nothing to classify: no ink stands out from the background."""


@dataclass(frozen=True)
class InputSpec:
    """What one input of a model must look like, from its manifest."""

    height: int
    width: int
    channels: int = 1
    channel_axis: bool = True  # False for models whose input is (N, H, W) (schema 1)
    low: float = 0.0
    high: float = 255.0
    policy: str = DEFAULT_POLICY

    def __post_init__(self) -> None:
        if self.channels not in COLORS.values():
            raise ValueError(f"{self.channels} channels: a model takes 1 (grey) or 3 (rgb)")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown resize policy {self.policy!r}; allowed: {POLICIES}")
        if not self.channel_axis and self.channels != 1:
            raise ValueError("a model without a channel axis takes grey images")

    @classmethod
    def from_manifest(cls, manifest: Any) -> InputSpec:
        """The manifest's `input`; for anything a model cannot be served with (a registry
        document is hostile until checked), a ValueError saying what is wrong, never another
        exception: integers are integers (not booleans, floats or text), the value range finite
        with low < high."""
        spec = manifest.get("input") if isinstance(manifest, dict) else None
        if not isinstance(spec, dict):
            raise ValueError("the manifest has no 'input' object")
        shape = spec.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) not in (3, 4)
            or not all(type(d) is int for d in shape)
            or min(shape[1:]) < 1
        ):
            raise ValueError(
                f"input shape {shape!r}: expected [N, H, W] or [N, H, W, C], H, W, C > 0"
            )
        channels = shape[3] if len(shape) == 4 else 1
        color = spec.get("color")
        if color is not None and (not isinstance(color, str) or COLORS.get(color) != channels):
            raise ValueError(f"input color {color!r} does not match {channels} channel(s)")
        value_range = spec.get("value_range")
        low, high = (
            [_finite(v) for v in value_range]
            if isinstance(value_range, list) and len(value_range) == 2
            else (None, None)
        )
        if low is None or high is None or not low < high:
            raise ValueError(f"input value_range {value_range!r}: expected finite [low, high]")
        preprocessing = spec.get("preprocessing") or {}
        if not isinstance(preprocessing, dict):
            raise ValueError(f"input preprocessing {preprocessing!r}: expected an object")
        policy = preprocessing.get("policy", DEFAULT_POLICY)
        return cls(shape[1], shape[2], channels, len(shape) == 4, low, high, policy)

    @property
    def color(self) -> str:
        return "grey" if self.channels == 1 else "rgb"

    @property
    def instance_shape(self) -> tuple[int, ...]:
        """The model's own shape of one input."""
        hw = (self.height, self.width)
        return (*hw, self.channels) if self.channel_axis else hw

    @property
    def accepted_shapes(self) -> tuple[tuple[int, ...], ...]:
        """What a client may send per instance: (H, W, C), (H, W) for grey, or flat."""
        h, w, c = self.height, self.width, self.channels
        grey = ((h, w),) if c == 1 else ()
        return (h, w, c), *grey, (h * w * c,)

    def describe_shapes(self) -> str:
        return " or ".join(str(list(s)) for s in self.accepted_shapes)

    def manifest_fields(self) -> dict[str, Any]:
        """What the training job records in the manifest's `input` for this spec."""
        return {
            "color": self.color,
            "value_range": [self.low, self.high],
            "preprocessing": {"policy": self.policy},
        }


def _finite(value: Any) -> float | None:
    """A JSON number (not a boolean) as a finite float, else None."""
    if type(value) not in (int, float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        return None
    return number if math.isfinite(number) else None


# -- image -> array ----------------------------------------------------------------------------


def working_side(spec: InputSpec) -> int:
    """The largest side an image is worked on: every policy's result is far smaller."""
    return max(MAX_WORKING_SIDE, 2 * max(spec.height, spec.width))


def reduce_early(image: Any, spec: InputSpec) -> Any:
    """A large image reduced (aspect ratio kept) to working_side before anything else touches
    it, so that the work and memory of what follows do not grow with the image: a JPEG is
    decoded at a reduced scale (libjpeg's DCT scaling, `draft`), then any image is resized
    (antialiased; alpha premultiplied). An opened, not yet loaded image is never decoded
    whole when it is a JPEG."""
    from PIL import Image

    side = working_side(spec)
    width, height = image.size
    if max(width, height) <= side:
        return image
    if getattr(image, "format", None) == "JPEG":  # no effect once it is loaded
        image.draft(image.mode, (side, side))  # the smallest scale that stays >= side
    if image.mode == "P" or (image.mode != "RGBA" and "transparency" in image.info):
        image = image.convert("RGBA")  # resizing a palette image would pick, not average
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap: a fast box reduction by an integer factor first (not for 16-bit modes)
    gap = None if image.mode.startswith("I;16") else 2.0
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=gap)


def prepare(image: Any, spec: InputSpec) -> np.ndarray:
    """A decoded PIL image -> float32 (H, W, C) values 0..255, as the manifest says.
    BlankImage when a digit model is given an image without ink."""
    from PIL import ImageOps

    image = reduce_early(image, spec)
    image = ImageOps.exif_transpose(image)
    image = flatten_transparency(image)
    if spec.policy == "digit":
        grey = digit(image, spec.height, spec.width)
        array = np.repeat(grey[:, :, None], spec.channels, axis=2)
    else:
        image = image.convert("L" if spec.channels == 1 else "RGB")
        array = np.asarray(_resize(image, spec), dtype=np.float32)
    return array.reshape(spec.height, spec.width, spec.channels)


def _resize(image: Any, spec: InputSpec) -> Any:
    from PIL import Image, ImageOps

    size = (spec.width, spec.height)
    if image.size == size:
        return image
    method = Image.Resampling.BILINEAR  # antialiased when reducing
    if spec.policy == "letterbox":
        return ImageOps.pad(image, size, method=method, color=0)
    if spec.policy == "center_crop":
        return ImageOps.fit(image, size, method=method)
    return image.resize(size, method)


def flatten_transparency(image: Any) -> Any:
    """An image with transparency, composited onto white if what is drawn is dark and onto
    black if it is light (a canvas with black strokes and one with white strokes both become
    ink on a plain background). Images without transparency are returned as they are."""
    from PIL import Image

    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    alpha = rgba[:, :, 3] / 255.0
    if alpha.min() >= 1.0:
        return Image.fromarray(rgba[:, :, :3].astype(np.uint8), "RGB")
    luminance = rgba[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    drawn = alpha.sum()
    ink_is_dark = drawn == 0 or float((luminance * alpha).sum() / drawn) < 128
    background = 255.0 if ink_is_dark else 0.0
    rgb = rgba[:, :, :3] * alpha[:, :, None] + background * (1 - alpha[:, :, None])
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")


def digit(image: Any, height: int, width: int) -> np.ndarray:
    """MNIST's preparation of a handwritten digit -> float32 (height, width), white on black."""
    from PIL import Image

    image = image.convert("L")
    if max(image.size) > MAX_WORKING_SIDE:  # the result is tiny: work on a reduced copy
        image.thumbnail((MAX_WORKING_SIDE, MAX_WORKING_SIDE), Image.Resampling.BILINEAR)
    grey = np.asarray(image, dtype=np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:  # dark ink on a light background: MNIST is light on dark
        grey = 255.0 - grey
    # The background is most of the image: its level and noise come from the median and the
    # median absolute deviation; what stands clearly above them is ink.
    level = float(np.median(grey))
    spread = 1.4826 * float(np.median(np.abs(grey - level)))
    ink = np.clip(grey - (level + 3 * spread + 8), 0, None)
    if ink.max() < 24:
        raise BlankImage("no ink stands out from the background: the image looks blank")
    mask = ink > 0.25 * ink.max()
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = 255.0 * crop / crop.max()

    box_h, box_w = max(1, round(height * DIGIT_BOX)), max(1, round(width * DIGIT_BOX))
    scale = min(box_h / crop.shape[0], box_w / crop.shape[1])
    new_h, new_w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = Image.fromarray(crop.astype(np.uint8), "L").resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    digit_pixels = np.asarray(small, dtype=np.float32)

    field = np.zeros((height, width), dtype=np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    field[top : top + new_h, left : left + new_w] = digit_pixels
    # centre of mass to the centre of the field, never pushing ink out of it
    total = field.sum()
    if total > 0:
        ys, xs = np.indices(field.shape)
        dy = round((height - 1) / 2 - float((ys * field).sum() / total))
        dx = round((width - 1) / 2 - float((xs * field).sum() / total))
        dy = int(np.clip(dy, -top, height - top - new_h))
        dx = int(np.clip(dx, -left, width - left - new_w))
        field = np.roll(field, (dy, dx), axis=(0, 1))
    peak = field.max()
    return field * (255.0 / peak) if peak > 0 else field
