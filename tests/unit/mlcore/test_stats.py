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


def test_a_baseline_is_these_exact_fields_rounded_as_recorded():
    """The manifest's baseline, written out: three inputs (shares of 1/3 rounded to 6 places),
    a label never predicted still listed, a mean confidence of 2/3."""
    probabilities = [[0.5, 0.25, 0.25, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.5]]
    inputs = np.zeros((3, 3, 1, 1))
    inputs[0, 0] = 1  # mean intensities 1/3, 0, 0: the batch's mean 1/9
    assert stats.baseline(probabilities, inputs, ["a", "b", "c", "d"]) == {
        "split": "test",
        "n": 3,
        "predicted_share": {"a": 0.666667, "b": 0.333333, "c": 0.0, "d": 0.0},
        "confidence": {
            "mean": 0.666667,
            "histogram": {
                "edges": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                "counts": [0, 0, 0, 0, 0, 2, 0, 0, 0, 1],
            },
        },
        "input": {"mean_intensity": [0.1111], "blank_share": 1.0},
    }


def test_a_baseline_of_one_input_and_none():
    one = stats.baseline([[0.2, 0.8]], np.zeros((1, 2, 2)), ["x", "y"])
    assert (one["n"], one["predicted_share"]) == (1, {"x": 0.0, "y": 1.0})
    with pytest.raises(ValueError, match=r"expected probabilities \(N>0, 2 classes\)"):
        stats.baseline(np.zeros((0, 2)), np.zeros((0, 2, 2)), ["x", "y"])
    with pytest.raises(ValueError, match=r"^no inputs to summarise$"):
        stats.input_summary(np.zeros((0, 2, 2)))
    assert stats.input_summary(np.full((1, 2, 2), 3.0)) == {
        "mean_intensity": [3.0],
        "blank_share": 1.0,
    }


def test_the_blank_share_keeps_six_places():
    batch = np.zeros((7, 2, 2))
    batch[:6, 0, 0] = 255  # six inputs with a bright pixel, one blank
    assert stats.input_summary(batch)["blank_share"] == 0.142857


def test_confidences_outside_0_1_are_counted_in_the_edge_bins():
    counts = stats.confidence_histogram(np.array([-0.5, 0.0, 0.05, 1.0, 1.5, 0.95]))["counts"]
    assert counts == [3, 0, 0, 0, 0, 0, 0, 0, 0, 3]


def test_the_mean_confidence_of_float32_predictions_is_computed_in_float64():
    """What the predictor gives (float32): its own float32 mean would read 0.604173."""
    confidences = np.array([0.4974226951599121, 0.5293121337890625, 0.7857856750488281], np.float32)
    rest = (1 - confidences) / 2
    probabilities = np.stack([confidences, rest, rest], axis=1).astype(np.float32)
    result = stats.baseline(probabilities, np.zeros((3, 2, 2)), LABELS)
    assert result["confidence"]["mean"] == 0.604174


def test_the_statistic_is_the_same_number_whatever_the_inputs_dtype():
    """The training job and the function may hold pixels as float64, float32 or uint8: the
    statistic is computed on float32 pixels either way, so both record the same numbers."""
    pixels = np.random.default_rng(2).random((4, 5, 7, 1)) * 255
    from_float64, blank64 = stats.input_statistics(pixels)
    from_float32, blank32 = stats.input_statistics(pixels.astype(np.float32))
    assert from_float64.dtype == np.float64 and from_float64.shape == (4, 1)
    np.testing.assert_array_equal(from_float64, from_float32)
    np.testing.assert_array_equal(blank64, blank32)


def test_each_colour_input_is_judged_blank_on_its_own():
    """Two uniform inputs of different levels in one batch: each is blank (nothing varies
    within it), whatever the other holds."""
    batch = np.stack([np.zeros((6, 6, 3)), np.full((6, 6, 3), 200.0)])
    assert stats.input_statistics(batch)[1].tolist() == [True, True]
    assert stats.input_statistics(batch[..., :1])[1].tolist() == [True, True]


def test_a_standard_deviation_of_exactly_blank_std_is_not_blank():
    exact = np.full((1, 28, 28), 100 - stats.BLANK_STD, np.float32)
    exact[:, ::2] = 100 + stats.BLANK_STD  # the standard deviation is BLANK_STD exactly
    assert not stats.input_statistics(exact)[1][0]
    assert not stats.input_statistics(np.repeat(exact[..., None], 3, axis=-1))[1][0]


def _blank_by_the_sum(batch: np.ndarray) -> list[bool]:
    """Each input's blank flag from its squared deviations alone (the definition)."""
    flat = np.asarray(batch, np.float64).reshape(len(batch), -1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    return ((centred * centred).sum(axis=1) < stats.BLANK_STD**2 * flat.shape[1]).tolist()


@pytest.mark.parametrize("channels", [1, 3])
def test_one_input_judged_by_its_range_is_blank_exactly_when_its_deviations_say_so(channels):
    """One input is judged first by its range (_one_too_wide_to_be_blank: a range that wide
    cannot be blank); inputs at that bound's edge, each side, and the least-deviation shape
    that range allows (one value at each end, the rest at the middle) get the flag the
    squared deviations give, as in a batch where that shortcut is not taken."""
    values = 28 * 28 * channels
    bound = stats.BLANK_STD * np.sqrt(2 * values)
    rng = np.random.default_rng(3)
    inputs = []
    for spread in (bound * 0.5, bound * 0.99, bound * 0.999, bound * 1.011, bound * 1.02, 255):
        extreme = np.full(values, 100.0, np.float32)
        extreme[0], extreme[1] = 100 - spread / 2, 100 + spread / 2  # least deviation
        inputs.append(extreme)
        noisy = np.clip(rng.normal(128, 3, values), 0, 255).astype(np.float32)
        noisy[0], noisy[1] = 128 - spread / 2, 128 + spread / 2
        inputs.append(noisy)
    for flat in inputs:
        one = flat.reshape(1, 28, 28, channels)
        (alone,) = stats.input_statistics(one)[1].tolist()
        in_a_batch = stats.input_statistics(np.concatenate([one, one]))[1].tolist()
        assert alone == in_a_batch[0] == _blank_by_the_sum(one)[0]
        # the same flag from the range a caller checked already (float64 values before float32)
        checked = (float(flat.astype(np.float64).min()), float(flat.astype(np.float64).max()))
        assert stats.channel_means_and_blanks(one, checked)[1] == int(alone)
        assert stats.channel_means_and_blanks(one)[1] == int(alone)
    assert stats.input_statistics(np.full((1, 28, 28), 255.0))[1].tolist() == [True]
    with pytest.raises(ValueError):  # shared by requests: read-only
        stats.input_statistics(np.full((1, 28, 28), 255.0) * np.eye(28))[1][0] = True


@pytest.mark.parametrize(
    "batch",
    [
        np.random.default_rng(4).integers(0, 256, (1, 28, 28)).astype(np.float32),  # one digit
        np.random.default_rng(5).integers(0, 256, (1, 8, 8, 3)).astype(np.float32),  # colour
        np.full((1, 28, 28), 7.0, np.float32),  # one blank input (the full computation)
        np.random.default_rng(6).integers(0, 256, (5, 28, 28, 1)).astype(np.float32),
        np.concatenate([np.zeros((2, 6, 6, 3)), np.full((1, 6, 6, 3), 200.0)]),
        # two blank inputs whose values together span the whole range: a batch's range says
        # nothing of one input's (the range shortcut is for one input only)
        np.stack([np.zeros((28, 28)), np.full((28, 28), 255.0)]).astype(np.float32),
    ],
)
def test_channel_means_and_blanks_are_input_statistics_as_lists(batch):
    """What the function's metrics document holds (emf.request): the same numbers as
    input_statistics, exactly, whichever path computed them."""
    means, blank = stats.input_statistics(batch)
    channels, blanks = stats.channel_means_and_blanks(batch)
    assert channels == means.T.tolist()
    assert blanks == int(blank.sum()) and type(blanks) is int
