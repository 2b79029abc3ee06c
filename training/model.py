"""The classifiers and their training. TensorFlow/Keras is imported here, not in data.py."""

from __future__ import annotations

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
    """Two small convolutions: better than the MLP on digits at a fraction of its bytes."""
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
ARCHITECTURES = {"cnn": cnn, "mlp": mlp, "mobilenet": mobilenet}


def build_model(config: TrainConfig, input_shape: tuple[int, ...], num_classes: int):
    """input_shape: (H, W, C) pixel values 0..255; a softmax over num_classes on top."""
    inputs = keras.Input(shape=input_shape, name="image")
    features = ARCHITECTURES[config.architecture](inputs, config)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(features)
    return keras.Model(inputs, outputs, name=f"{config.architecture}_classifier")


def train(
    config: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Seeded training with early stopping on the validation split; returns the model and its
    per-epoch history (loss, accuracy, val_loss, val_accuracy)."""
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, x_train.shape[1:], num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    history = model.fit(
        x_train.astype(np.float32),
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(x_val.astype(np.float32), y_val),
        callbacks=[stop],
        verbose=2,  # one line per epoch (a progress bar per batch floods logs and CI)
    )
    return model, {k: [round(float(v), 6) for v in vs] for k, vs in history.history.items()}


def keras_probabilities(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=512, verbose=0)
