"""The classifiers and their training. TensorFlow/Keras is imported here, not in data.py."""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers

from training.config import TrainConfig


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


def mobilenet(inputs, config: TrainConfig):
    """A MobileNetV3-Small backbone, transfer-learning sized but trainable on 2 cores. Hub
    downloads are unreachable offline: weights are random, or read from a local file
    (config.weights, e.g. saved with backbone.save_weights where the ImageNet ones could be
    downloaded)."""
    height, width, channels = inputs.shape[1:]
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_-1_1")(inputs)
    if min(height, width) < 32:  # the smallest input MobileNetV3 takes
        x = layers.Resizing(max(32, height), max(32, width), name="upsize")(x)
    backbone = keras.applications.MobileNetV3Small(
        input_shape=tuple(x.shape[1:]),
        include_top=False,
        weights=None,
        include_preprocessing=False,
        pooling="avg",
    )
    if config.weights:
        backbone.load_weights(config.weights)
    # Keras builds MobileNetV3's batch norms with momentum 0.999, tuned for ImageNet's millions
    # of steps: after a few hundred steps their moving statistics are still the initial ones,
    # and the model answers at chance in inference mode. 0.9 settles within an epoch here.
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    x = backbone(x)
    return layers.Dropout(0.2)(x)


# The architectures ARCH chooses from (training/config.py ARCHITECTURES lists the same names):
# each takes the raw 0..255 input and does its own scaling, so the converted model and every
# client agree on the input by construction.
ARCHITECTURES = {"cnn": cnn, "mlp": mlp, "mobilenet": mobilenet, "small_cnn": small_cnn}


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
    """Seeded training on the validation split's schedule (`schedule`); returns the model, its
    per-epoch history (loss, accuracy, val_loss, val_accuracy, learning_rate) and why it
    stopped (`why_stopped`)."""
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, x_train.shape[1:], num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = schedule(config, started, clock)
    history = model.fit(
        x_train.astype(np.float32),
        y_train,
        epochs=config.max_epochs,
        batch_size=config.batch_size,
        validation_data=(x_val.astype(np.float32), y_val),
        callbacks=callbacks,
        verbose=2,  # one line per epoch (a progress bar per batch floods logs and CI)
    )
    history = {k: [round(float(v), 6) for v in vs] for k, vs in history.history.items()}
    return model, history, why_stopped(callbacks, history, config)


def keras_probabilities(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=512, verbose=0)
