"""A Keras model trained elsewhere -> the same artifact as `train` makes (`make convert`).

The served model always takes pixel values 0..255: the scaling the user's model expects
(an input range, or a per-channel mean and standard deviation on the 0..1 scale, as Keras
applications and torchvision state them) becomes the first layer of the converted graph, so
serving never disagrees with training. A model whose outputs are logits (they do not sum to 1
on the calibration data) gets a softmax appended, so that confidences are probabilities.
Then it is calibrated on DATASET's training split, evaluated float against quantized on its
test split with the same gate, and packaged (training.pipeline.package).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from training.config import ConvertConfig, parse_numbers
from training.data import DatasetError, file_sha256, load_dataset, make_splits, with_test_set
from training.pipeline import TrainResult, describe_dataset, package

CHANNEL_COLORS = {1: "grey", 3: "rgb"}


def load_user_model(path: Path):
    """A .keras file or a SavedModel folder -> a Keras model (a SavedModel is wrapped in a
    TFSMLayer with its serving signature's input shape)."""
    import keras
    import tensorflow as tf

    path = Path(path)
    if path.is_dir():
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        (spec,) = signature.structured_input_signature[1].values()
        inputs = keras.Input(shape=tuple(spec.shape[1:]), name="image")
        outputs = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")(inputs)
        if isinstance(outputs, dict):
            if len(outputs) != 1:
                raise ValueError(f"{path}: {len(outputs)} outputs; a classifier has one")
            (outputs,) = outputs.values()
        return keras.Model(inputs, outputs), file_sha256(*sorted(path.rglob("*.pb")))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model (a .keras file or a SavedModel folder)")
    return keras.saving.load_model(path, compile=False), file_sha256(path)


def input_scaling(config: ConvertConfig, channels: int) -> tuple[float | np.ndarray, ...]:
    """(scale, offset) so that model input = pixels * scale + offset, and its description."""
    mean = parse_numbers(config.mean, "mean", (1, 3))
    if mean is not None:
        std = np.array(parse_numbers(config.std, "std", (1, 3)), np.float32)
        mean = np.array(mean, np.float32)
        if len(mean) not in (1, channels) or len(std) not in (1, channels):
            raise ValueError(f"mean and std need 1 or {channels} values for this model")
        return 1 / (255 * std), -mean / std, {"mean": mean.tolist(), "std": std.tolist()}
    low, high = parse_numbers(config.input_range, "input range", (2,)) or (0.0, 255.0)
    return (high - low) / 255, low, {"input_range": [low, high]}


def wrap(user_model, config: ConvertConfig, calibration: np.ndarray):
    """The user's model behind its input scaling (and a softmax where it outputs logits)."""
    import keras

    shape = tuple(user_model.input_shape[1:])
    scale, offset, described = input_scaling(config, shape[-1])
    inputs = keras.Input(shape=shape, name="image")
    x = keras.layers.Rescaling(scale, offset, name="pixels_to_model_range")(inputs)
    outputs = user_model(x)
    sample = keras.Model(inputs, outputs).predict(calibration.astype(np.float32), verbose=0)
    logits = bool((sample < 0).any() or not np.allclose(sample.sum(axis=1), 1.0, atol=1e-3))
    if logits:
        outputs = keras.layers.Softmax(name="probabilities")(outputs)
    notes = [f"input scaling inside the graph: pixels 0..255 -> {described}"]
    if logits:
        notes.append("its outputs are logits (they do not sum to 1): a softmax was appended")
    return keras.Model(inputs, outputs), {**described, "softmax_appended": logits}, notes


def run_conversion(config: ConvertConfig, clock=time.time, say=print) -> TrainResult:
    started = clock()
    user_model, model_sha256 = load_user_model(config.model)
    shape = tuple(user_model.input_shape[1:])
    if len(shape) != 3 or shape[-1] not in CHANNEL_COLORS or None in shape:
        raise ValueError(
            f"{config.model}: input shape {shape}; expected (height, width, 1 or 3) images"
        )
    dataset = load_dataset(config.dataset, shape[:2], CHANNEL_COLORS[shape[-1]], config.resize)
    if config.test_dataset:
        dataset = with_test_set(dataset, config.test_dataset)
    classes = int(user_model.output_shape[-1])
    if classes != len(dataset.class_names):
        raise DatasetError(
            f"{config.dataset}: {len(dataset.class_names)} classes, but {config.model} has "
            f"{classes} outputs"
        )
    splits = make_splits(
        dataset, config.validation_fraction, config.test_fraction, config.seed, config.limit
    )
    say(describe_dataset(dataset, splits))
    model, scaling, notes = wrap(user_model, config, splits.x_train[: config.calibration_size])
    about = {"source": str(config.model), "source_sha256": model_sha256, **scaling, "notes": notes}
    return package(model, dataset, splits, config, about, None, started, clock)
