"""The classifiers and their training. TensorFlow/Keras is imported here, not in data.py."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from training.config import TrainConfig
from training.data import file_sha256


def mlp(inputs, config: TrainConfig):
    """The seed's classifier: one hidden layer of 128."""
    x = layers.Rescaling(1.0 / 255, name="scale_0_1")(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return layers.Dropout(0.2)(x)


def cnn(inputs, config: TrainConfig):
    """Three conv/max-pool blocks (32, 64, 64 filters), dense 64, dropout 0.3, inputs scaled to
    [-1, 1]: the plain CNN that small folders of a user's own images train well with (rendered
    letters, textures; docs/own-data.md), and digits too."""
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_-1_1")(inputs)
    for filters in (32, 64, 64):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    return layers.Dropout(0.3)(x)


def small_cnn(inputs, config: TrainConfig):
    """Two small convolutions (the previous default): better than the MLP on digits at a
    fraction of its bytes, but it stays near chance on small folders of colour images."""
    x = layers.Rescaling(1.0 / 255, name="scale_0_1")(inputs)
    for filters in (16, 32):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    return layers.Dropout(0.2)(x)


@dataclass(frozen=True)
class Backbone:
    """A keras.applications backbone: its constructor, the square input size its ImageNet
    weights were trained at, and the options that put its own preprocessing inside the graph
    (so that it takes pixel values 0..255, as every model here)."""

    build: Callable
    pretrained_size: int
    options: dict


# ARCH's backbones (training/config.py BACKBONES lists the same names). Both take 0..255: V3's
# include_preprocessing adds its Rescaling to [-1, 1]; EfficientNet always starts with its own
# Rescaling and Normalization. Both have ImageNet weights for 224x224 only (Keras' weight files
# are named for that size, e.g. weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5).
BACKBONES = {
    "mobilenet": Backbone(
        keras.applications.MobileNetV3Small, 224, {"include_preprocessing": True}
    ),
    "efficientnet": Backbone(keras.applications.EfficientNetB0, 224, {}),
}
SMALLEST_BACKBONE_INPUT = 32  # both refuse a smaller input


def backbone_input_size(config: TrainConfig, height: int, width: int) -> tuple[int, int]:
    """The size the backbone sees (the served model's input stays the data's size): with
    starting weights (imagenet, or a file standing in for them) the size they were trained at;
    from random weights the data's own size (at least 32), since upsampling would only cost time."""
    if config.pretrained is not None:
        size = BACKBONES[config.architecture].pretrained_size
        return size, size
    return max(SMALLEST_BACKBONE_INPUT, height), max(SMALLEST_BACKBONE_INPUT, width)


class WeightsUnavailable(ValueError):
    """WEIGHTS=imagenet, and Keras could not download them (no network, a proxy, a full disk)."""


def keras_cache() -> Path:
    """Where keras.applications keeps downloaded weights: $KERAS_HOME/models, else
    ~/.keras/models (keras.utils.get_file's cache_subdir "models")."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def pretrained_backbone(inputs, config: TrainConfig):
    """mobilenet, efficientnet: the backbone on the image (grey repeated to RGB, resized to
    backbone_input_size), global average pooling, dropout 0.2. With starting weights
    (config.pretrained) the backbone runs in inference mode even while it is fine-tuned, so its
    batch-norm statistics stay those of its weights (Keras' transfer-learning guide); training
    decides which of its weights are trainable (`phases`)."""
    spec = BACKBONES[config.architecture]
    height, width, channels = inputs.shape[1:]
    x = inputs
    if channels == 1:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    size = backbone_input_size(config, height, width)
    if size != (height, width):
        x = layers.Resizing(*size, name="resize_for_backbone")(x)
    try:
        backbone = spec.build(
            input_shape=(*size, 3),
            include_top=False,
            weights=config.pretrained,  # "imagenet", a file's path, or None (random)
            pooling="avg",  # (no `name=`: EfficientNet names its weight file after it)
            **spec.options,
        )
    except Exception as exc:  # keras.utils.get_file raises a bare Exception on a failed download
        if config.pretrained != "imagenet":
            raise
        raise WeightsUnavailable(
            f"could not get the ImageNet weights of {config.architecture} ({exc}). Keras "
            f"downloads them on first use into {keras_cache()} ($KERAS_HOME/models): allow that "
            "download, or copy the file named above there from a machine that has it, or give "
            "WEIGHTS=<file.weights.h5> (weights you saved) or WEIGHTS=none (random weights)"
        ) from exc
    if config.pretrained is None:
        # Keras builds these batch norms with momentum 0.99-0.999, tuned for ImageNet's millions
        # of steps: after a few hundred steps their moving statistics are still the initial
        # ones, and the model answers at chance in inference mode. 0.9 settles within an epoch.
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = 0.9
        x = backbone(x)
    else:
        x = backbone(x, training=False)
    return layers.Dropout(0.2)(x)


# The architectures ARCH chooses from (training/config.py ARCHITECTURES lists the same names):
# each takes the raw 0..255 input and does its own scaling, so the converted model and every
# client agree on the input by construction.
ARCHITECTURES = {
    "cnn": cnn,
    "efficientnet": pretrained_backbone,
    "mlp": mlp,
    "mobilenet": pretrained_backbone,
    "small_cnn": small_cnn,
}

# Each AUGMENT level's random transformations, in the factors Keras' layers take: translation
# and zoom as a fraction of the height and width, rotation as a fraction of a full turn (0.04:
# up to 14 degrees either way), contrast as a factor around each image's mean. Pixels moved in
# from outside the frame reflect the image (the layers' default).
AUGMENTATIONS = {
    "none": {},
    "light": {"translate": 0.1, "rotate": 0.04, "zoom": 0.1, "contrast": 0.2},
    "strong": {"translate": 0.2, "rotate": 0.08, "zoom": 0.2, "contrast": 0.4},
}


def augmentation_layers(config: TrainConfig) -> list:
    """AUGMENT's Keras preprocessing layers, in order; each acts only when called in training."""
    level, flip = config.augmentation
    factors = AUGMENTATIONS[level]
    seed = config.seed
    steps = []
    if factors:
        steps = [
            layers.RandomTranslation(factors["translate"], factors["translate"], seed=seed),
            layers.RandomRotation(factors["rotate"], seed=seed + 1),
            layers.RandomZoom(factors["zoom"], seed=seed + 2),
            layers.RandomContrast(factors["contrast"], value_range=(0, 255), seed=seed + 3),
        ]
    if flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed + 4))
    return steps


def for_training(model: keras.Model, config: TrainConfig) -> keras.Model:
    """The model that is trained: `model` with AUGMENT's layers in front (sharing its weights),
    or `model` itself without augmentation. The model that is saved and converted has none of
    them, so nothing of augmentation can reach the served graph."""
    steps = augmentation_layers(config)
    if not steps:
        return model
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    x = inputs
    for layer in steps:
        x = layer(x)
    return keras.Model(inputs, model(x), name=f"augmented_{model.name}")


def describe_model(config: TrainConfig, input_shape: tuple[int, ...]) -> dict:
    """What the manifest records of how the model was made, beside its architecture: the
    augmentation, and a backbone's starting weights and input size."""
    level, flip = config.augmentation
    about: dict = {"augmentation": {"level": level, "flip": flip, **AUGMENTATIONS[level]}}
    if config.architecture in BACKBONES:
        source = config.pretrained
        weights: dict | str = source or "none"
        if source not in (None, "imagenet"):
            weights = {"file": Path(source).name, "sha256": file_sha256(Path(source))}
        about["backbone"] = {
            "application": BACKBONES[config.architecture].build.__name__,
            "weights": weights,
            "input_size": list(backbone_input_size(config, *input_shape[:2])),
        }
    return about


@dataclass(frozen=True)
class Phase:
    """One stretch of training with its own optimizer and schedule."""

    name: str  # "train"; or "head" (backbone frozen), then "fine_tune" (all weights)
    learning_rate: float
    backbone_trainable: bool | None  # None: no backbone, or one trained from random weights


# Fine-tuning a pretrained backbone at a tenth of the head's rate: large steps would wreck the
# features the weights carry (Keras' transfer-learning guide and TensorFlow's tutorial lower the
# rate 10 to 100 times for this phase).
FINE_TUNE_RATE = 0.1


def phases(config: TrainConfig) -> list[Phase]:
    """From random weights, one phase. With starting weights, two: the backbone frozen while
    the new head learns (its random gradients would otherwise reach the backbone's weights),
    then every weight fine-tuned at FINE_TUNE_RATE of the rate, each phase until its own early
    stopping; the better of the two (validation loss) is kept."""
    if config.pretrained is None:
        return [Phase("train", config.learning_rate, None)]
    return [
        Phase("head", config.learning_rate, False),
        Phase("fine_tune", config.learning_rate * FINE_TUNE_RATE, True),
    ]


def enter_phase(model: keras.Model, phase: Phase) -> None:
    if phase.backbone_trainable is not None:
        (backbone,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        backbone.trainable = phase.backbone_trainable


def build_model(config: TrainConfig, input_shape: tuple[int, ...], num_classes: int):
    """input_shape: (H, W, C) pixel values 0..255; a softmax over num_classes on top."""
    inputs = keras.Input(shape=input_shape, name="image")
    features = ARCHITECTURES[config.architecture](inputs, config)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(features)
    return keras.Model(inputs, outputs, name=f"{config.architecture}_classifier")


class TimeBudget(keras.callbacks.Callback):
    """Stops training before an epoch that would end more than `seconds` after `started` (each
    epoch taken to last as long as the longest so far), so a run ends within its budget."""

    def __init__(self, seconds: float, started: float | None = None, clock=time.monotonic):
        super().__init__()
        self.seconds, self.started, self.clock = seconds, started, clock
        self.stopped = False
        self.longest = 0.0

    def on_train_begin(self, logs=None):
        if self.started is None:
            self.started = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self.longest = max(self.longest, now - self.epoch_started)
        if now - self.started + self.longest > self.seconds:
            self.stopped = True
            self.model.stop_training = True


def schedule(config: TrainConfig, started: float | None = None, clock=time.monotonic) -> list:
    """What ends and paces training, the same in every training path (fit, the distributed
    loop): early stopping on the validation loss with the best epoch's weights restored, the
    learning rate halved when the validation loss has not improved for all but the last two
    epochs of the patience (training goes on only if the lower rate helps), and the wall-clock
    budget (MAX_MINUTES, counted from `started` on `clock`).

    Why so late: small folders often sit at chance for several epochs before they learn. Halving
    after half the patience (5 of 10) cut the rate during that wait, and the model never left
    it: 41% against 51% held-out on a texture set, 82% against 85% on rendered letters
    (docs/own-data.md)."""
    patience = config.stop_patience
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=0.5,
            patience=max(1, patience - 2),
            min_lr=config.learning_rate / 32,
        ),
        TimeBudget(config.max_minutes * 60, started, clock),
    ]


def why_stopped(callbacks: list, history: dict[str, list[float]], config: TrainConfig) -> dict:
    """The manifest's ``model.stopped``: why training ended (converged: early stopping;
    budget: MAX_MINUTES; max_epochs: EPOCHS ran out), the epoch whose weights were kept, and
    whether the validation accuracy was still rising when the budget or the maximum ended it."""
    stopping, _, budget = callbacks
    if stopping.stopped_epoch > 0:
        reason = "converged"
    elif budget.stopped:
        reason = "budget"
    else:
        reason = "max_epochs"
    accuracy = history.get("val_accuracy", [])
    rising = len(accuracy) > 3 and max(accuracy[-3:]) > max(accuracy[:-3])
    return {
        "reason": reason,
        "epochs": len(history.get("loss", [])),
        "best_epoch": int(stopping.best_epoch) + 1,
        "max_epochs": config.max_epochs,
        "patience": config.stop_patience,
        "max_minutes": config.max_minutes,
        "still_improving": reason != "converged" and rising,
    }


class PhaseLog:
    """The phases of one run as they end: one history across them (epochs numbered on), each
    phase's record (model.stopped's `phases`), and the weights of the phase with the best
    validation loss, which the run keeps. The same for fit and the distributed loop."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.history: dict[str, list[float]] = {}
        self.records: list[dict] = []
        self.best: tuple[float, list, int] | None = None  # (val_loss, weights, phase index)

    def add(self, phase: Phase, callbacks: list, history: dict, model: keras.Model) -> bool:
        """A phase that ended, its best epoch's weights on `model` (early stopping restored
        them). True when the next phase may run: not when the time budget ended this one."""
        history = {k: [round(float(v), 6) for v in vs] for k, vs in history.items()}
        offset = len(self.history.get("loss", []))
        for key, values in history.items():
            self.history.setdefault(key, []).extend(values)
        stopped = why_stopped(callbacks, history, self.config)
        best_loss = min(history.get("val_loss") or [float("inf")])
        self.records.append(
            {
                "name": phase.name,
                "learning_rate": phase.learning_rate,
                **stopped,
                "best_epoch": offset + stopped["best_epoch"],
                "best_val_loss": round(best_loss, 6),
            }
        )
        if self.best is None or best_loss < self.best[0]:
            self.best = (best_loss, model.get_weights(), len(self.records) - 1)
        return stopped["reason"] != "budget"

    def finish(self, model: keras.Model) -> dict:
        """model.stopped: why the last phase ended, and the epoch (across phases) whose weights
        are kept, now on `model`; with two phases, each phase's record and which was kept."""
        _, weights, kept = self.best
        if kept != len(self.records) - 1:
            model.set_weights(weights)
        last = self.records[-1]
        stopped = {
            key: last[key]
            for key in ("reason", "max_epochs", "patience", "max_minutes", "still_improving")
        }
        stopped |= {
            "epochs": len(self.history.get("loss", [])),
            "best_epoch": self.records[kept]["best_epoch"],
        }
        if len(phases(self.config)) > 1:
            fields = ("name", "learning_rate", "epochs", "best_epoch", "best_val_loss", "reason")
            stopped["phases"] = [{k: r[k] for k in fields} for r in self.records]
            stopped["kept"] = self.records[kept]["name"]
        return stopped


def train(
    config: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    started: float | None = None,
    clock=time.monotonic,
) -> tuple[keras.Model, dict[str, list[float]], dict]:
    """Seeded training with AUGMENT's layers in front (`for_training`), phase by phase
    (`phases`), each on the validation split's schedule (`schedule`); returns the model (no
    augmentation in it), its per-epoch history (loss, accuracy, val_loss, val_accuracy,
    learning_rate) and why it stopped (`PhaseLog.finish`)."""
    keras.utils.set_random_seed(config.seed)
    started = clock() if started is None else started  # one budget across the phases
    model = build_model(config, x_train.shape[1:], num_classes)
    trainer = for_training(model, config)
    log = PhaseLog(config)
    for phase in phases(config):
        enter_phase(model, phase)
        trainer.compile(
            optimizer=keras.optimizers.Adam(phase.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        callbacks = schedule(config, started, clock)
        fitted = trainer.fit(
            x_train.astype(np.float32),
            y_train,
            epochs=config.max_epochs,
            batch_size=config.batch_size,
            validation_data=(x_val.astype(np.float32), y_val),
            callbacks=callbacks,
            verbose=2,  # one line per epoch (a progress bar per batch floods logs and CI)
        )
        if not log.add(phase, callbacks, fitted.history, model):
            break
    return model, log.history, log.finish(model)


def keras_probabilities(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=512, verbose=0)
