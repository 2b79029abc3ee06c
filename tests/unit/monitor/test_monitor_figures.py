"""drift.py: the figures a window of traffic gets against the training baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

import drift
from mlcore import stats
from tests.function_support import FIXTURE_DIR, fixture_manifest

BASELINE = fixture_manifest()["baseline"]
LABELS = fixture_manifest()["labels"]


def digits():
    """The fixture's test split (the baseline's own inputs) and the int8 model's answers."""
    with np.load(FIXTURE_DIR / "digits.npz") as data:
        return data["x"], data["expected"]


def observed_from(x: np.ndarray, predicted: np.ndarray, confidence: float) -> drift.Observed:
    means, blank = stats.input_statistics(x)
    counts = np.bincount(predicted, minlength=len(LABELS))
    return drift.Observed(
        predictions=len(x),
        label_counts={label: float(c) for label, c in zip(LABELS, counts, strict=True)},
        confidence_mean=confidence,
        intensity_means=list(means.mean(axis=0)),
        blank_share=float(blank.mean()),
    )


def test_psi_is_zero_for_the_same_distribution_and_matches_a_hand_computation():
    shares = {"a": 0.5, "b": 0.5}
    assert drift.psi(shares, {"a": 50, "b": 50}, 100) == 0
    # (0.8-0.5) ln(0.8/0.5) + (0.2-0.5) ln(0.2/0.5) = 0.1410 + 0.2749
    assert drift.psi(shares, {"a": 80, "b": 20}, 100) == pytest.approx(0.41589, abs=1e-5)


def test_psi_stays_finite_when_a_class_is_missing_on_either_side():
    value = drift.psi({"a": 1.0, "b": 0.0}, {"b": 10}, 100)
    assert math.isfinite(value) and value > 1  # a complete swap is a huge shift
    with pytest.raises(ValueError):
        drift.psi({"a": 1.0}, {"a": 0}, 100)


def test_cohens_h():
    assert drift.cohens_h(0.5, 0.5) == 0
    assert drift.cohens_h(0.75, 0.5) == pytest.approx(0.5236, abs=1e-4)  # Cohen's table
    assert drift.cohens_h(0.5, 0.75) == pytest.approx(-0.5236, abs=1e-4)
    assert drift.cohens_h(1.5, -1) == pytest.approx(math.pi)  # clipped to 0..1


@pytest.mark.parametrize(("dof", "exact"), [(3, 11.345), (9, 21.666), (99, 134.642)])
def test_chi2_quantile_is_within_one_percent(dof, exact):
    assert drift.chi2_quantile(dof) == pytest.approx(exact, rel=0.01)


def test_the_baseline_inputs_themselves_show_no_drift():
    """The test split the baseline was computed on, as a window: every figure near 0."""
    x, predicted = digits()
    figures = drift.measure(BASELINE, observed_from(x, predicted, BASELINE["confidence"]["mean"]))
    assert figures.psi < 0.001 and figures.confidence_drop == 0
    assert figures.input_shift < 0.001
    # the noise of a 500-input baseline against a 500-input window, 10 classes: ~0.087
    assert figures.psi_noise == pytest.approx((2 / 500) * 21.67, rel=0.01)


def test_a_window_of_two_classes_is_a_significant_shift():
    x, predicted = digits()
    keep = np.isin(predicted, [0, 1])
    figures = drift.measure(BASELINE, observed_from(x[keep], predicted[keep], 0.93))
    # ~100 inputs: the noise alone can reach 0.25 (why MonitorMinPredictions), this is 10x it
    assert figures.psi > 10 * figures.psi_noise > 0.25


def test_less_confidence_is_a_positive_drop():
    x, predicted = digits()
    figures = drift.measure(BASELINE, observed_from(x, predicted, 0.70))
    assert figures.confidence_drop == pytest.approx(
        drift.cohens_h(BASELINE["confidence"]["mean"], 0.70)
    )
    assert figures.confidence_drop > 0.5  # 0.93 -> 0.70: a medium effect at least
    more = drift.measure(BASELINE, observed_from(x, predicted, 0.99))
    assert more.confidence_drop < 0  # more confident than on the test split


def test_inverted_or_blank_inputs_shift_the_input_statistic():
    x, predicted = digits()
    inverted = drift.measure(BASELINE, observed_from(255 - x, predicted, 0.9))
    assert inverted.input_shift > 1  # ink on white: a large effect
    assert inverted.detail["intensity_means"][0] > 200
    half_blank = np.concatenate([x[:250], np.zeros_like(x[:250])])
    blank = drift.measure(BASELINE, observed_from(half_blank, predicted, 0.9))
    assert blank.detail["blank_share"] == 0.5 and blank.detail["blank_h"] > 1


def test_a_baseline_that_does_not_fit_is_refused():
    x, predicted = digits()
    window = observed_from(x, predicted, 0.9)
    with pytest.raises(ValueError, match="not usable"):
        drift.measure({"n": 500}, window)
    rgb = {**BASELINE, "input": {"mean_intensity": [1.0, 2.0, 3.0], "blank_share": 0.0}}
    with pytest.raises(ValueError, match="channel"):
        drift.measure(rgb, window)
