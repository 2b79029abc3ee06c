"""The baseline's statistics: what the training job records and the function recomputes."""

import numpy as np
import pytest

from mlcore import stats

LABELS = ["cat", "dog", "fish"]


def test_mean_intensity_is_per_channel_and_per_input():
    batch = np.zeros((2, 4, 4, 3), np.float32)
    batch[0, ..., 0], batch[0, ..., 2] = 255, 51  # input 0: red 255, green 0, blue 51
    batch[1, :2, :, 1] = 200  # input 1: green on half the pixels
    means, _ = stats.input_statistics(batch)
    assert means.shape == (2, 3)
    np.testing.assert_allclose(means, [[255, 0, 51], [0, 100, 0]], atol=1e-3)
    summary = stats.input_summary(batch)
    assert summary["mean_intensity"] == pytest.approx([127.5, 50, 25.5], abs=1e-3)


def test_blank_inputs_are_the_ones_whose_pixels_hardly_vary():
    rng = np.random.default_rng(0)
    digits = np.load("training/data/mnist-sample.npz")["x"][:200]
    flat_noise = np.clip(rng.normal(128, 2, (3, 28, 28)), 0, 255)  # a grey frame, sensor noise
    batch = np.concatenate([digits, np.zeros((2, 28, 28)), np.full((1, 28, 28), 255), flat_noise])
    _, blank = stats.input_statistics(batch)
    assert blank.tolist() == [False] * 200 + [True] * 6
    assert stats.input_summary(batch)["blank_share"] == pytest.approx(6 / 206, abs=1e-6)
    # a faint but real pattern is not blank
    stripes = np.zeros((1, 28, 28))
    stripes[:, ::2] = 4 * stats.BLANK_STD
    assert not stats.input_statistics(stripes)[1][0]


@pytest.mark.parametrize("factor", [0.99, 1.01])
def test_blank_is_decided_at_the_threshold_alike_for_grey_and_colour_inputs(factor):
    # half the pixels at 100 - d, half at 100 + d: the standard deviation is exactly d
    grey = np.full((1, 28, 28), 100 - factor * stats.BLANK_STD, np.float32)
    grey[:, ::2] = 100 + factor * stats.BLANK_STD
    colour = np.repeat(grey[..., None], 3, axis=-1)  # the same values in each channel
    expected = factor < 1
    for batch in (grey, grey[..., None], colour, np.concatenate([grey, grey * 0])):
        assert stats.input_statistics(batch)[1][0] == expected
    with pytest.raises(ValueError):  # the averaging row is shared by requests: read-only
        stats._averaging_row(28 * 28)[0, 0] = 1


def test_the_same_numbers_from_uint8_and_float32_and_without_a_channel_axis():
    x = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    from_uint8, from_float = stats.input_summary(x), stats.input_summary(x.astype(np.float32))
    assert from_uint8 == from_float == stats.input_summary(x[..., 0])
    # per-input means average to the batch's mean: what the monitor can aggregate
    means, _ = stats.input_statistics(x)
    assert means.mean(axis=0)[0] == pytest.approx(float(x.mean()), abs=1e-3)


@pytest.mark.parametrize("shape", [(28, 28), (2, 28), (1, 2, 3, 4, 5)])
def test_a_batch_of_another_shape_is_refused(shape):
    with pytest.raises(ValueError, match="expected a batch"):
        stats.input_statistics(np.zeros(shape))


def test_baseline_names_labels_and_counts_every_input():
    probabilities = np.array(
        [[0.95, 0.03, 0.02], [0.15, 0.75, 0.1], [0.1, 0.85, 0.05], [0.0, 0.0, 1.0]], np.float32
    )
    inputs = np.full((4, 2, 2, 1), 10.0)
    result = stats.baseline(probabilities, inputs, LABELS)
    assert result["n"] == 4
    assert result["predicted_share"] == {"cat": 0.25, "dog": 0.5, "fish": 0.25}
    assert list(result["predicted_share"]) == LABELS
    confidence = result["confidence"]
    assert confidence["mean"] == pytest.approx((0.95 + 0.75 + 0.85 + 1.0) / 4, abs=1e-6)
    histogram = confidence["histogram"]
    assert histogram["edges"] == [round(i / 10, 1) for i in range(11)]
    # 0.75 -> [0.7, 0.8), 0.85 -> [0.8, 0.9), 0.95 and 1.0 -> the last bin, [0.9, 1.0]
    assert histogram["counts"] == [0, 0, 0, 0, 0, 0, 0, 1, 1, 2]
    assert result["input"] == {"mean_intensity": [10.0], "blank_share": 1.0}


def test_baseline_refuses_what_does_not_fit_the_labels():
    with pytest.raises(ValueError, match="3 classes"):
        stats.baseline(np.ones((2, 2)) / 2, np.zeros((2, 2, 2)), LABELS)
    with pytest.raises(ValueError, match="1 inputs for 2 rows"):
        stats.baseline(np.ones((2, 3)) / 3, np.zeros((1, 2, 2)), LABELS)
