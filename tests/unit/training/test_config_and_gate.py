import dataclasses

import pytest

from training.cli import main, parser
from training.config import TrainConfig
from training.evaluate import AccuracyGateError, check_accuracy_gate


def test_unknown_quantize_mode_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: int8, float16, dynamic, none"):
        TrainConfig(quantize="int4")


def test_cli_rejects_unknown_mode_with_exit_2_and_a_message(capsys):
    assert main(["train", "--quantize", "int4"]) == 2
    assert "allowed: int8, float16, dynamic, none" in capsys.readouterr().err


@pytest.mark.parametrize(
    "field,value",
    [
        ("epochs", 0),
        ("calibration_size", 0),
        ("name", "a/b"),
        ("max_accuracy_drop", -1),
        ("version", 0),
        ("max_accuracy_drop", float("nan")),
        ("max_accuracy_drop", float("inf")),
        ("learning_rate", 0.0),
        ("name", ""),
        ("name", "x" * 65),
    ],
)
def test_invalid_config_values_are_refused(field, value):
    with pytest.raises(ValueError):
        TrainConfig(**{field: value})


def test_gate_passes_within_the_allowed_drop_and_reports_points():
    assert check_accuracy_gate(0.95, 0.945, max_drop=1.0) == pytest.approx(0.5)


def test_gate_fails_beyond_the_allowed_drop():
    with pytest.raises(AccuracyGateError, match=r"2\.00 points below.*at most 1\.00"):
        check_accuracy_gate(0.95, 0.93, max_drop=1.0)


def test_every_config_field_is_a_flag_with_the_configs_own_default():
    """The CLI restates no default: its flags are made from TrainConfig's fields."""
    args = parser().parse_args(["train"])
    for item in dataclasses.fields(TrainConfig):
        assert getattr(args, item.name) == item.default, item.name
    args = parser().parse_args(["train", "--batch-size", "32", "--image-size", "8x8"])
    assert (args.batch_size, args.image_size) == (32, "8x8")


def test_a_nan_gate_is_refused_on_the_command_line(capsys):
    assert main(["train", "--max-accuracy-drop", "nan"]) == 2
    assert "max_accuracy_drop" in capsys.readouterr().err


def test_a_dataset_too_small_to_split_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    import numpy as np

    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, x=np.zeros((12, 28, 28), np.uint8), y=np.arange(12) % 10)
    assert main(["train", "--dataset", str(tiny), "--artifacts", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "12 examples are too few" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_model_names_with_dots_are_accepted():
    assert TrainConfig(name="fashion.v2").name == "fashion.v2"


def test_wilson_interval_matches_published_values():
    from training.evaluate import wilson_interval

    # Wilson (1927) / Newcombe (1998) worked example: 81 of 263 -> 0.2553 to 0.3662
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(500, 500)[1] == 1.0 and wilson_interval(500, 500)[0] > 0.99
    assert wilson_interval(0, 0) == [0.0, 1.0]


def test_scorecard_counts_per_class_and_confusion():
    import numpy as np

    from training.evaluate import scorecard

    card = scorecard(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), ["a", "b", "c"])
    assert card["accuracy"] == 0.75 and card["n"] == 4
    assert card["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert card["per_class"]["c"]["accuracy"] == 0.5 and card["per_class"]["c"]["n"] == 2
