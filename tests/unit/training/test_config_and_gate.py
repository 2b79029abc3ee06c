import pytest

from training.cli import main
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
