"""Typed configuration of the training job, validated once. The one place for its defaults:
the CLI's flags are generated from these fields (training/cli.py), and the Makefile passes a
variable only when it is set."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from mlcore.images import POLICIES
from mlcore.registry import check_model_name

# training/model.py builds each; the first is the default
ARCHITECTURES = ("cnn", "efficientnet", "mlp", "mobilenet", "small_cnn")
# the keras.applications backbones among them (training/model.py BACKBONES): these take WEIGHTS
BACKBONES = ("efficientnet", "mobilenet")
WEIGHTS_SOURCES = ("imagenet", "none")  # or the path of a .weights.h5 file
# Training-time augmentation (training/model.py AUGMENTATIONS gives each level's factors); `flip`
# adds horizontal flips, only when asked (letters and digits are not mirror-invariant).
AUGMENT_LEVELS = ("none", "light", "strong")
AUGMENT = "light"  # for a user's own data: chosen by measurement (docs/own-data.md)
SAMPLE_AUGMENT = "none"  # the bundled digits converge in a few epochs without it
QUANTIZE_MODES = ("int8", "float16", "dynamic", "none")
COLORS = ("rgb", "grey")
DISTRIBUTE_MODES = ("mirrored", "multi-worker")  # training/distribute.py

# How long training runs, for a user's own data: small folders (100-200 images per class) need
# tens of epochs (rendered letters: 42 until the validation loss stopped improving), so EPOCHS is
# a ceiling that early stopping (PATIENCE epochs without a better validation loss) and the
# wall-clock budget (MAX_MINUTES) end first. The bundled digit sample converges in a few epochs:
# its own limits keep `make demo` and the tests quick (docs/own-data.md has the measurements).
EPOCHS, PATIENCE = 100, 10
# With augmentation the validation loss improves later and more unevenly (each epoch sees harder
# images): on a texture folder early stopping at 10 ended a run at epoch 15 (37.5% held out)
# that waiting 20 took to epoch 55 (72.5%). docs/own-data.md, "Choosing the default".
AUGMENT_PATIENCE = 20
SAMPLE = "mnist-sample"
SAMPLE_EPOCHS, SAMPLE_PATIENCE = 15, 3


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """'HxW' (e.g. 32x32) -> (H, W)."""
    if not text:
        return None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"image size {text!r}: expected HxW, e.g. 32x32") from None
    if not (1 <= height <= 4096 and 1 <= width <= 4096):
        raise ValueError(f"image size {text!r}: each side must be 1..4096 pixels")
    return height, width


def check_weights(weights: str, architecture: str) -> str:
    """WEIGHTS: imagenet, none, or an existing .h5 file (Keras' .weights.h5, or its own
    downloaded .h5 files), and only for a backbone."""
    allowed = f"{', '.join(WEIGHTS_SOURCES)}, or the path of a .weights.h5 file"
    if architecture not in BACKBONES:
        raise ValueError(
            f"weights {weights!r}: only the backbones ({', '.join(BACKBONES)}) take starting "
            f"weights; architecture {architecture!r} trains from random weights"
        )
    if weights in WEIGHTS_SOURCES:
        return weights
    path = Path(weights)
    if not path.name.endswith(".h5"):
        raise ValueError(f"weights {weights!r}: expected {allowed}")
    if not path.is_file():
        raise ValueError(f"weights {weights!r}: no such file; expected {allowed}")
    return weights


def check_choice(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}; allowed: {', '.join(allowed)}")
    return value


def parse_augment(text: str) -> tuple[str, bool]:
    """AUGMENT's text -> (level, flip): `light`, `strong,flip`, `none`; `flip` alone adds flips
    to the default level (the caller's), so it is returned as level ''."""
    words = [w.strip() for w in str(text).lower().split(",") if w.strip()]
    levels = [w for w in words if w in AUGMENT_LEVELS]
    unknown = [w for w in words if w not in AUGMENT_LEVELS and w != "flip"]
    if not words or unknown or len(levels) > 1:
        raise ValueError(
            f"augment {text!r}: expected one of {', '.join(AUGMENT_LEVELS)}, optionally with "
            "flip (horizontal flips), e.g. light,flip"
        )
    return (levels[0] if levels else ""), "flip" in words


def option(default, help: str, **argparse_options):  # noqa: A002 - argparse's name
    """A config field that is also a CLI flag (--field-name) with this help text."""
    return field(default=default, metadata={"help": help, **argparse_options})


def parse_flag(text: str | bool) -> bool:
    """A yes/no option: --force, --force=1, --force=true; 0, false, no and '' are no."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r}: expected 1 or 0 (true or false)")


def parse_numbers(text: str | None, what: str, count: tuple[int, ...]) -> tuple[float, ...] | None:
    """'0.5,0.5,0.5' -> (0.5, 0.5, 0.5), with `count` the allowed numbers of values."""
    if text is None or text == "":
        return None
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected comma-separated numbers") from None
    if len(values) not in count or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what} {text!r}: expected {' or '.join(map(str, count))} numbers")
    return values


@dataclass(frozen=True)
class ArtifactConfig:
    """What every way of making an artifact shares: the data, the quantization and its gate,
    the splits and where the artifact goes."""

    name: str = option("mnist", "model name: artifact folder, registry prefix, TF Serving name")
    dataset: str = option(
        SAMPLE,
        "mnist-sample (bundled), mnist (Keras' download), a folder of class subfolders of "
        "images, a folder of IDX files, an .npz, or an s3:// URI of one of them",
    )
    test_dataset: str | None = option(
        None,
        "a separate test set (any form DATASET accepts, classes matched by name); "
        "default: held out from DATASET",
    )
    resize: str | None = option(
        None,
        f"how an image becomes an input: {', '.join(POLICIES)} (default: digit for the MNIST "
        "datasets, stretch otherwise); recorded in the manifest and applied when serving",
    )
    seed: int = option(42, "seed of the split, the weights and the calibration sample")
    validation_fraction: float = option(0.1, "share of the data held out for validation")
    test_fraction: float = option(
        0.1, "share held out for testing (datasets without their own test split)"
    )
    limit: int | None = option(None, "use at most N training examples (quick runs)")
    quantize: str = option("int8", f"one of {', '.join(QUANTIZE_MODES)}")
    calibration_size: int = option(500, "representative examples for int8 calibration")
    max_accuracy_drop: float = option(
        1.0,
        "percentage points the converted model may lose against the float model; a drop of "
        "one or two test examples is always allowed (what the split can measure)",
    )
    min_accuracy: float | None = option(
        None,
        "percent: refuse a model whose held-out accuracy is below it (default: refuse only one "
        "whose 95% interval does not lie above the most common class's share)",
    )
    force: bool = option(
        False,
        "keep (and publish) a model that failed a gate; the manifest records it",
        type=parse_flag,
        nargs="?",
        const=True,
    )
    artifacts: Path = option(Path("artifacts"), "local artifact folder")
    version: int | None = option(None, "the version to write (default: UTC epoch seconds)")

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("dataset must be given (a built-in name, a path or an s3:// URI)")
        if self.resize is not None:
            check_choice("resize policy", self.resize, POLICIES)
        check_choice("quantization mode", self.quantize, QUANTIZE_MODES)
        check_model_name(self.name)
        if self.calibration_size < 1:
            raise ValueError(f"calibration_size must be >= 1, got {self.calibration_size}")
        if self.limit is not None and self.limit < 10:
            raise ValueError(f"limit must be >= 10 examples, got {self.limit}")
        if not 0 < self.validation_fraction < 0.5 or not 0 < self.test_fraction < 0.5:
            raise ValueError("validation and test fractions must be between 0 and 0.5")
        # `not x >= 0` is also true for NaN, which would disable the gate
        if not self.max_accuracy_drop >= 0 or math.isinf(self.max_accuracy_drop):
            raise ValueError(
                f"max_accuracy_drop must be a number of points >= 0, got {self.max_accuracy_drop}"
            )
        if self.version is not None and self.version < 1:
            raise ValueError(f"version must be a positive integer, got {self.version}")
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 100:
            raise ValueError(f"min_accuracy must be a percentage 0..100, got {self.min_accuracy}")


@dataclass(frozen=True)
class TrainConfig(ArtifactConfig):
    """`python -m training train`: a model trained here."""

    image_size: str | None = option(
        None, "HxW the images are resized to, e.g. 32x32 (default: the most common size found)"
    )
    color: str | None = option(None, "rgb or grey (default: what the images are)")
    architecture: str = option(ARCHITECTURES[0], f"one of {', '.join(ARCHITECTURES)}")
    augment: str | None = option(
        None,
        f"training-time augmentation: {', '.join(AUGMENT_LEVELS)} (random shifts, rotations, "
        "zoom and contrast), with flip for horizontal flips, e.g. light,flip; none of it is in "
        f"the served model (default: {AUGMENT}; {SAMPLE_AUGMENT} for {SAMPLE})",
    )
    weights: str | None = option(
        None,
        f"the backbone's starting weights ({', '.join(BACKBONES)}): imagenet (downloaded by "
        "Keras on first use into ~/.keras/models), none (random, trained from scratch), or a "
        ".weights.h5 file (default: imagenet)",
    )
    epochs: int | None = option(
        None,
        f"most training epochs; early stopping ends most runs sooner (default: {EPOCHS}; "
        f"{SAMPLE_EPOCHS} for {SAMPLE})",
    )
    batch_size: int = option(
        32, "training batch size (32: more steps per epoch for small folders than 64)"
    )
    learning_rate: float = option(
        1e-3, "Adam's learning rate at the start; halved when the validation loss stalls"
    )
    patience: int | None = option(
        None,
        "epochs without a better validation loss before stopping, with the best epoch's weights "
        f"kept (default: {PATIENCE}, {AUGMENT_PATIENCE} with augmentation; {SAMPLE_PATIENCE} for "
        f"{SAMPLE})",
    )
    max_minutes: float = option(
        30.0,
        "wall-clock budget of the run, in minutes: training stops before an epoch that would "
        "end past it, and says so",
    )
    distribute: str | None = option(
        None,
        "train with tf.distribute: mirrored (every device of this machine) or multi-worker "
        "(one process per machine, the cluster in TF_CONFIG; the chief writes the artifact); "
        "default: one process, Keras' fit",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("architecture", self.architecture, ARCHITECTURES)
        if self.augment is not None:
            parse_augment(self.augment)
        if self.weights is not None:
            check_weights(self.weights, self.architecture)
        if self.distribute is not None:
            check_choice("distribution strategy", self.distribute, DISTRIBUTE_MODES)
        if self.color is not None:
            check_choice("color", self.color, COLORS)
        parse_image_size(self.image_size)
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not math.isfinite(self.max_minutes) or self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be a positive number, got {self.max_minutes}")

    @property
    def augmentation(self) -> tuple[str, bool]:
        """(level, flip): AUGMENT as given, its level else the default for this dataset."""
        level, flip = parse_augment(self.augment) if self.augment else ("", False)
        return level or (SAMPLE_AUGMENT if self.dataset == SAMPLE else AUGMENT), flip

    @property
    def pretrained(self) -> str | None:
        """Where a backbone's starting weights come from: 'imagenet', a file's path, or None
        (random: WEIGHTS=none, and every architecture that is not a backbone)."""
        if self.architecture not in BACKBONES or self.weights == "none":
            return None
        return self.weights or "imagenet"

    @property
    def max_epochs(self) -> int:
        """EPOCHS as given, else the default for this dataset."""
        return self.epochs or (SAMPLE_EPOCHS if self.dataset == SAMPLE else EPOCHS)

    @property
    def stop_patience(self) -> int:
        """PATIENCE as given, else the default for this dataset and augmentation."""
        if self.patience or self.dataset == SAMPLE:
            return self.patience or SAMPLE_PATIENCE
        return PATIENCE if self.augmentation == ("none", False) else AUGMENT_PATIENCE


@dataclass(frozen=True)
class ConvertConfig(ArtifactConfig):
    """`python -m training convert`: a Keras model trained elsewhere, quantized and verified
    here. Its input size and colour come from the model; its input range from these."""

    model: Path | None = option(None, "the model: a .keras file or a SavedModel folder")
    input_range: str | None = option(
        None, "lo,hi: the values the model expects, e.g. -1,1 (default: 0,255)"
    )
    mean: str | None = option(
        None, "per-channel mean on the 0..1 scale, RGB order (with std), e.g. 0.485,0.456,0.406"
    )
    std: str | None = option(None, "per-channel standard deviation on the 0..1 scale (with mean)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is None:
            raise ValueError("model must be given: a .keras file or a SavedModel folder")
        low_high = parse_numbers(self.input_range, "input range", (2,))
        if low_high and not low_high[0] < low_high[1]:
            raise ValueError(f"input range {self.input_range!r}: expected lo < hi")
        mean, std = (
            parse_numbers(v, k, (1, 3)) for v, k in ((self.mean, "mean"), (self.std, "std"))
        )
        if (mean is None) != (std is None):
            raise ValueError("mean and std go together: give both or neither")
        if std and not all(v > 0 for v in std):
            raise ValueError(f"std {self.std!r}: every value must be > 0")
        if low_high and mean:
            raise ValueError("give either input_range or mean and std, not both")
