"""How far a window of served traffic is from the training baseline in the model's manifest
(``baseline``: mlcore.stats documents it). Pure functions over plain numbers; the monitor
(monitor.py) reads the window from CloudWatch and publishes what ``measure`` returns.

Three figures, each 0 when the window looks like the baseline and growing with drift:

- ``psi``: the population stability index of the predicted-class distribution,
  sum_i (a_i - e_i) ln(a_i / e_i) over the classes, e the baseline's shares and a the window's.
  Read as in credit scoring, where it comes from: below 0.1 no shift, 0.1 to 0.25 a moderate one,
  above 0.25 a significant one (Siddiqi, "Credit Risk Scorecards", Wiley 2006). A class that one
  side never predicted counts as half an observation there, so the index stays finite.
- ``confidence_drop``: Cohen's h between the baseline's mean confidence and the window's,
  2 asin(sqrt(p_baseline)) - 2 asin(sqrt(p_window)); positive when the model is less sure than
  on its test split. For a calibrated model mean confidence estimates accuracy (Guo et al., "On
  Calibration of Modern Neural Networks", ICML 2017), a proportion, and h is the effect size of
  a difference of proportions: 0.2 small, 0.5 medium, 0.8 large (Cohen, "Statistical Power
  Analysis for the Behavioral Sciences", 2nd ed., 1988).
- ``input_shift``: the largest |h| among each channel's mean intensity (as a share of the
  model's value range, value / 255 for the usual 0..255) and the share of blank inputs, each
  against the baseline's.

``psi_noise`` is what sampling alone gives: with no drift at all, PSI between a baseline of n
and a window of m inputs over k classes is about (1/n + 1/m) times a chi-square with k - 1
degrees of freedom (Yurdakul, "Statistical Properties of Population Stability Index", Western
Michigan University, 2018). Its 99th percentile is reported beside the index, so a reader can
tell a shift from the noise of a small window or baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PIXEL_RANGE = (0.0, 255.0)  # the project's input contract: pixel values 0..255
Z_99 = 2.326348  # the standard normal's 99th percentile


@dataclass(frozen=True)
class Observed:
    """A window of one model version's traffic, from its metrics."""

    predictions: int
    label_counts: Mapping[str, float]  # predictions per label
    confidence_mean: float
    intensity_means: Sequence[float]  # mean intensity per channel, 0..255
    blank_share: float


@dataclass(frozen=True)
class Drift:
    psi: float
    psi_noise: float  # the 99th percentile of PSI with no drift, for these sample sizes
    confidence_drop: float
    input_shift: float
    detail: dict[str, Any] = field(default_factory=dict)


def cohens_h(p: float, q: float) -> float:
    """Cohen's h from proportion q to proportion p (each clipped to 0..1)."""
    clip = lambda x: min(1.0, max(0.0, float(x)))  # noqa: E731
    return 2 * math.asin(math.sqrt(clip(p))) - 2 * math.asin(math.sqrt(clip(q)))


def psi(expected: Mapping[str, float], observed: Mapping[str, float], n_expected: int) -> float:
    """PSI of observed counts per class against expected shares (from n_expected inputs)."""
    m = sum(observed.values())
    if m <= 0 or n_expected <= 0:
        raise ValueError("both sides need at least one observation")
    total = 0.0
    for label in set(expected) | set(observed):
        e = max(float(expected.get(label, 0.0)), 0.5 / n_expected)
        a = max(float(observed.get(label, 0.0)) / m, 0.5 / m)
        total += (a - e) * math.log(a / e)
    return total


def chi2_quantile(dof: int, z: float = Z_99) -> float:
    """Chi-square quantile for the normal quantile z (Wilson and Hilferty's approximation,
    within 1% of the exact value from 3 degrees of freedom up)."""
    k = max(1, dof)
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def psi_noise(classes: int, n_expected: int, m_observed: int) -> float:
    return (1 / n_expected + 1 / m_observed) * chi2_quantile(classes - 1)


def measure(
    baseline: Mapping[str, Any],
    observed: Observed,
    value_range: tuple[float, float] = PIXEL_RANGE,
) -> Drift:
    """The three figures (module docstring) of a window against a manifest's baseline
    (`value_range`: the model's input range, the manifest's). A ValueError when the baseline
    lacks what is needed or the channels disagree."""
    try:
        shares = {str(k): float(v) for k, v in baseline["predicted_share"].items()}
        n = int(baseline["n"])
        base_confidence = float(baseline["confidence"]["mean"])
        base_intensity = [float(v) for v in baseline["input"]["mean_intensity"]]
        base_blank = float(baseline["input"]["blank_share"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the manifest's baseline is not usable: {exc!r}") from None
    if len(observed.intensity_means) != len(base_intensity):
        raise ValueError(
            f"the window has {len(observed.intensity_means)} channel(s), the baseline "
            f"{len(base_intensity)}"
        )
    index = psi(shares, observed.label_counts, n)
    drop = cohens_h(base_confidence, observed.confidence_mean)
    low, high = value_range
    scale = lambda value: (value - low) / (high - low)  # noqa: E731
    channels = [
        cohens_h(scale(now), scale(then))
        for now, then in zip(observed.intensity_means, base_intensity, strict=True)
    ]
    blank = cohens_h(observed.blank_share, base_blank)
    return Drift(
        psi=index,
        psi_noise=psi_noise(len(shares), n, observed.predictions),
        confidence_drop=drop,
        input_shift=max(abs(h) for h in [*channels, blank]),
        detail={
            "confidence_mean": observed.confidence_mean,
            "baseline_confidence_mean": base_confidence,
            "intensity_means": list(observed.intensity_means),
            "baseline_intensity_means": base_intensity,
            "intensity_h": channels,
            "blank_share": observed.blank_share,
            "baseline_blank_share": base_blank,
            "blank_h": blank,
        },
    )
