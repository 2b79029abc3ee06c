"""Typed configuration of the training job, validated once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATASETS = ("mnist-sample", "mnist")
ARCHITECTURES = ("mlp", "cnn")
QUANTIZE_MODES = ("int8", "float16", "dynamic", "none")


def check_choice(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}; allowed: {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class TrainConfig:
    name: str = "mnist"
    dataset: str = "mnist-sample"
    data_path: str | None = None  # local mnist.npz / IDX folder / s3:// URI (dataset "mnist")
    architecture: str = "mlp"
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 2  # early stopping on validation loss
    seed: int = 42
    validation_fraction: float = 0.1
    test_fraction: float = 0.1  # only for datasets without their own test split
    limit: int | None = None  # train on the first N training examples (quick runs, CI)
    quantize: str = "int8"
    calibration_size: int = 500
    max_accuracy_drop: float = 1.0  # percentage points the converted model may lose
    artifacts: Path = Path("artifacts")
    version: int | None = None  # default: UTC epoch seconds at training time

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("quantization mode", self.quantize, QUANTIZE_MODES)
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ValueError(f"model name {self.name!r}: use letters, digits, '-' and '_' only")
        for field, value in (
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("calibration_size", self.calibration_size),
        ):
            if value < 1:
                raise ValueError(f"{field} must be >= 1, got {value}")
        if self.limit is not None and self.limit < 10:
            raise ValueError(f"limit must be >= 10 examples, got {self.limit}")
        if not 0 < self.validation_fraction < 0.5 or not 0 < self.test_fraction < 0.5:
            raise ValueError("validation and test fractions must be between 0 and 0.5")
        if self.max_accuracy_drop < 0:
            raise ValueError(f"max_accuracy_drop must be >= 0, got {self.max_accuracy_drop}")
        if self.version is not None and self.version < 1:
            raise ValueError(f"version must be a positive integer, got {self.version}")
