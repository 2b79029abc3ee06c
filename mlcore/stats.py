"""What a served model is watched against: the baseline its manifest records, and the one cheap
input statistic that the training job and the function compute with the same code.

numpy only. `input_statistics` is vectorised over the batch (a few reductions, no Python loop
per input or pixel), so the function can run it on every request.

The manifest's ``baseline`` (training.pipeline.package writes it for ``make train`` and
``make convert``, from the held-out test split as served: the converted model through
mlcore.predictor, on the pixel values the function would receive)::

    "baseline": {
      "split": "test",
      "n": 500,                                   # inputs it was computed on
      "predicted_share": {"0": 0.1, ..., "9": 0.098},
                                                  # per label (the manifest's label names, in
                                                  # label order): share of inputs predicted as
                                                  # that label; the shares sum to 1
      "confidence": {                             # confidence = the top class's probability
        "mean": 0.953,
        "histogram": {"edges": [0.0, 0.1, ..., 1.0],   # CONFIDENCE_EDGES, 10 bins
                      "counts": [0, 0, 1, ..., 421]}   # inputs per bin; they sum to n
      },
      "input": {
        "mean_intensity": [33.4],                 # per channel (1 grey, 3 R,G,B): mean pixel
                                                  # value 0..255 over every pixel of every input
        "blank_share": 0.0                        # share of blank inputs (see BLANK_STD)
      }
    }

An input is blank when its pixel values hardly vary: their standard deviation over the whole
input (every channel) is below BLANK_STD on the 0..255 scale. An all-zero or all-white array, a
lens cap, a uniform frame with sensor noise are blank; any digit or photo is far above it
(MNIST digits: about 80).
"""

from __future__ import annotations

import functools
import math

import numpy as np

CONFIDENCE_EDGES = tuple(round(i / 10, 1) for i in range(11))  # 0.0, 0.1, ..., 1.0
BLANK_STD = 4.0  # pixel-value standard deviation (0..255) below which an input is blank


def _as_batch(batch: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) values 0..255 -> float32 (N, H*W, C), without a copy when the
    batch is already float32 (what the function predicts on)."""
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim == 3:
        batch = batch[..., None]
    if batch.ndim != 4:
        raise ValueError(f"expected a batch (N, H, W) or (N, H, W, C), got shape {batch.shape}")
    count, height, width, channels = batch.shape
    return batch.reshape(count, height * width, channels)  # -1 cannot size an empty batch


@functools.lru_cache(maxsize=8)
def _averaging_row(size: int) -> np.ndarray:
    """(1, size) float32 of 1/size, made once per input size (read-only: shared by requests)."""
    row = np.full((1, size), 1.0 / size, np.float32)
    row.flags.writeable = False
    return row


_NOT_BLANK = np.zeros(1, bool)
_NOT_BLANK.flags.writeable = False


def _one_too_wide_to_be_blank(
    pixels: np.ndarray, value_range: tuple[float, float] | None = None
) -> bool:
    """Whether `pixels` (1, H*W, C) hold one input whose values span too wide a range for it to
    be blank. The least standard deviation n numbers spanning a range R can have is
    R / sqrt(2n) (one at each end, every other one at the middle), so a range above
    BLANK_STD * sqrt(2n) means a deviation above BLANK_STD (the 1% beyond that bound is far
    more than float32's rounding of the squares' sum, so the answer is the one that sum gives).
    Two reductions instead of the deviations' four array operations: a digit or a photo spans
    far more (MNIST: 255 against 112 for 28x28). Only for one input: per-input ranges of a
    batch cost as much as the sum. `value_range`: its smallest and largest value where the
    caller has them already (the function's range check, on the values before float32: the 1%
    covers that rounding too)."""
    count, size, channels = pixels.shape
    if count != 1:
        return False
    if value_range is None:
        value_range = (
            float(np.minimum.reduce(pixels, axis=None)),
            float(np.maximum.reduce(pixels, axis=None)),
        )
    spread = value_range[1] - value_range[0]
    return spread > BLANK_STD * math.sqrt(2 * size * channels) * 1.01


def _blank(pixels: np.ndarray, row_means: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Per input, whether its standard deviation is below BLANK_STD, i.e. the sum of squared
    deviations from the input's mean < BLANK_STD^2 * values; that sum is one BLAS product per
    input too (numpy's std is about ten array passes and calls)."""
    count, size, channels = pixels.shape
    flat = pixels.reshape(count, size * channels)
    # the input's mean over its channels; with one channel, that channel's mean as it is (the
    # same float32: numpy's mean of one value is the value, and float32 -> float64 -> float32
    # is exact), without mean()'s Python-level wrapper (a third of this function's time)
    centre = row_means if channels == 1 else means.mean(axis=1, keepdims=True).astype(np.float32)
    centred = flat - centre
    squares = (centred[:, None, :] @ centred[:, :, None])[:, 0, 0]
    return squares < BLANK_STD * BLANK_STD * flat.shape[1]


def input_statistics(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A batch of inputs (N, H, W[, C]) with pixel values 0..255 -> per input: its mean
    intensity per channel, float64 (N, C), and whether it is blank, bool (N,).

    The mean of the per-input means is the batch's mean intensity (every input has the same
    number of pixels), so per-input values can be averaged across requests. Cost (2 shared
    cores): about 0.01 ms for one 28x28 input, 0.1 ms for 256 of them."""
    pixels = _as_batch(batch)
    # one BLAS product per input: numpy's mean over the middle axis of (N, H*W, 3) is ~30x slower
    row_means = (_averaging_row(pixels.shape[1]) @ pixels)[:, 0, :]  # float32 (N, C)
    means = row_means.astype(np.float64)
    if _one_too_wide_to_be_blank(pixels):
        return means, _NOT_BLANK
    return means, _blank(pixels, row_means, means)


def channel_means_and_blanks(
    batch: np.ndarray, value_range: tuple[float, float] | None = None
) -> tuple[list[list[float]], int]:
    """input_statistics as a metrics document holds them: per channel, each input's mean (plain
    floats), and the count of blank inputs. One input too wide to be blank (most requests)
    takes no more array operations than its means need: the float32 means, which are the same
    Python floats without the float64 copy (float32 -> float is exact). `value_range`: the
    batch's smallest and largest value, where the caller has them."""
    pixels = _as_batch(batch)
    product = _averaging_row(pixels.shape[1]) @ pixels  # (N, 1, C), as in input_statistics
    if _one_too_wide_to_be_blank(pixels, value_range):
        return product.reshape(-1, 1).tolist(), 0  # one input: (C, 1)
    row_means = product[:, 0, :]
    means = row_means.astype(np.float64)
    blank = _blank(pixels, row_means, means)
    return means.T.tolist(), int(np.count_nonzero(blank))  # count_nonzero: sum() unwrapped


def input_summary(batch: np.ndarray) -> dict:
    """The baseline's ``input``: mean intensity per channel and share of blank inputs."""
    means, blank = input_statistics(batch)
    if len(blank) == 0:
        raise ValueError("no inputs to summarise")
    return {
        "mean_intensity": [round(float(v), 4) for v in means.mean(axis=0)],
        "blank_share": round(float(blank.mean()), 6),
    }


def confidence_histogram(confidences: np.ndarray) -> dict:
    """Counts of confidences in CONFIDENCE_EDGES' bins (the last bin includes 1.0)."""
    counts, _ = np.histogram(np.clip(confidences, 0.0, 1.0), bins=CONFIDENCE_EDGES)
    return {"edges": list(CONFIDENCE_EDGES), "counts": [int(c) for c in counts]}


def baseline(probabilities: np.ndarray, inputs: np.ndarray, labels: list[str]) -> dict:
    """The manifest's ``baseline`` (module docstring) from the served model's probabilities
    (N, classes) on `inputs` (N, H, W[, C]) pixel values 0..255."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n = len(probabilities)
    if n == 0 or probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(
            f"expected probabilities (N>0, {len(labels)} classes), got {probabilities.shape}"
        )
    if len(inputs) != n:
        raise ValueError(f"{len(inputs)} inputs for {n} rows of probabilities")
    predicted = np.bincount(probabilities.argmax(axis=1), minlength=len(labels))
    confidences = probabilities.max(axis=1)
    return {
        "split": "test",
        "n": int(n),
        "predicted_share": {
            label: round(int(count) / n, 6) for label, count in zip(labels, predicted, strict=True)
        },
        "confidence": {
            "mean": round(float(confidences.mean()), 6),
            "histogram": confidence_histogram(confidences),
        },
        "input": input_summary(inputs),
    }
