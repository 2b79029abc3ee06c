import dataclasses

import numpy as np
import pytest

from training import evaluate
from training.cli import main, parser
from training.config import (
    AUGMENT_PATIENCE,
    EPOCHS,
    PATIENCE,
    SAMPLE_EPOCHS,
    SAMPLE_PATIENCE,
    TrainConfig,
)


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


def score(correct: int, n: int) -> dict:
    return evaluate.proportion(correct, n)


def test_a_drop_of_two_examples_passes_whatever_points_it_makes():
    """On 75 test examples one flipped prediction is 1.33 points: a flat 1-point bar would
    refuse a good model for noise the split cannot measure."""
    check = evaluate.quantization_check(score(65, 75), score(63, 75), max_drop=1.0)
    assert check["passed"] and check["examples_lost"] == 2
    assert check["drop_points"] == pytest.approx(2.6667, abs=1e-4)
    assert check["allowed_points"] == pytest.approx(2.6667, abs=1e-4)


def test_a_larger_drop_fails_and_says_what_was_allowed_and_why():
    check = evaluate.quantization_check(score(65, 75), score(62, 75), max_drop=1.0)
    assert not check["passed"] and check["examples_lost"] == 3
    assert "4.00 points (3 of 75 examples)" in check["message"]
    assert "the larger of MAX_ACCURACY_DROP=1 and 2 examples of 75" in check["message"]


def test_on_a_large_split_the_points_bar_holds():
    assert evaluate.quantization_check(score(950, 1000), score(945, 1000), 1.0)["passed"]
    assert not evaluate.quantization_check(score(950, 1000), score(939, 1000), 1.0)["passed"]
    # and a better quantized model is no drop at all
    assert evaluate.quantization_check(score(50, 75), score(60, 75), 0.0)["passed"]


def test_a_model_whose_interval_does_not_clear_the_majority_class_is_refused():
    labels = ["A", "B", "C", "D", "E"]
    balanced = np.repeat(np.arange(5), 15)  # 75 examples, chance 20%
    at_chance = evaluate.chance_check(score(18, 75), balanced, labels)  # 24%: 15.8%..34.8%
    assert not at_chance["passed"] and at_chance["majority_share"] == 0.2
    assert (
        "does not lie above chance, 20.0% (5 classes of 15 test images each)"
        in (at_chance["message"])
    )
    assert evaluate.chance_check(score(30, 75), balanced, labels)["passed"]  # 40%: 29.7%..51.3%
    # imbalanced: 70% of the test split is one class; 75% right is not yet better than that
    skewed = np.array([1] * 70 + [0] * 30)
    check = evaluate.chance_check(score(75, 100), skewed, ["cat", "dog"])
    assert not check["passed"] and check["majority_label"] == "dog"
    assert "70.0%, what always answering 'dog' (the most common class) scores" in check["message"]
    assert evaluate.chance_check(score(90, 100), skewed, ["cat", "dog"])["passed"]


def test_min_accuracy_is_a_stricter_bar_in_percent():
    assert evaluate.min_accuracy_check(score(90, 100), 90)["passed"]
    check = evaluate.min_accuracy_check(score(89, 100), 90)
    assert not check["passed"] and "89.00% is below MIN_ACCURACY=90%" in check["message"]


def test_the_verdict_and_what_to_try_name_the_options_that_change_it():
    balanced = np.repeat(np.arange(5), 15)
    chance = evaluate.chance_check(score(18, 75), balanced, list("ABCDE"))
    quantization = evaluate.quantization_check(score(65, 75), score(60, 75), 1.0)
    gate = evaluate.verdict([chance, quantization], force=False)
    assert gate == {"passed": False, "forced": False, "checks": [chance, quantization]}
    message = evaluate.refusal(gate, trained=True, test_fraction=0.1)
    for option in ("EPOCHS", "MAX_MINUTES", "ARCH", "AUGMENT=", "WEIGHTS=imagenet",
                   "MAX_ACCURACY_DROP", "TEST_FRACTION (now 0.1)",
                   "TEST_DATASET", "FORCE=1", "more images per class"):  # fmt: skip
        assert option in message, option
    alone = evaluate.verdict([chance], False)
    converted = evaluate.refusal(alone, trained=False, test_fraction=0.1)
    assert "INPUT_RANGE" in converted and "EPOCHS" not in converted
    assert evaluate.verdict([chance], force=True)["forced"] is True
    assert evaluate.verdict([quantization | {"passed": True}], force=True)["forced"] is False


def test_the_defaults_converge_on_small_folders_and_the_sample_keeps_its_own():
    folder = TrainConfig(dataset="my/images")  # augmented by default: it waits longer
    assert (folder.max_epochs, folder.stop_patience) == (EPOCHS, AUGMENT_PATIENCE)
    assert AUGMENT_PATIENCE > PATIENCE
    plain = TrainConfig(dataset="my/images", augment="none")
    assert plain.stop_patience == PATIENCE
    assert TrainConfig(dataset="my/images", augment="none,flip").stop_patience == AUGMENT_PATIENCE
    augmented_sample = TrainConfig(augment="light")
    assert augmented_sample.stop_patience == SAMPLE_PATIENCE
    sample = TrainConfig()
    assert (sample.max_epochs, sample.stop_patience) == (SAMPLE_EPOCHS, SAMPLE_PATIENCE)
    given = TrainConfig(epochs=7, patience=2)
    assert (given.max_epochs, given.stop_patience) == (7, 2)
    for bad in ({"max_minutes": 0}, {"max_minutes": float("nan")}, {"min_accuracy": 101}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_force_is_a_yes_no_flag(capsys):
    for argv, expected in (([], False), (["--force"], True), (["--force=1"], True),
                           (["--force=0"], False), (["--force=true"], True)):  # fmt: skip
        assert parser().parse_args(["train", *argv]).force is expected
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "--force=maybe"])


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
