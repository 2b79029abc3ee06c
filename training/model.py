"""The classifiers and their training. TensorFlow/Keras is imported here, not in data.py."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from training.config import TrainConfig


def build_model(architecture: str, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Input: raw grey levels 0..255. The 1/255 scaling is a layer of the model itself, so the
    converted model and every client agree on the input by construction."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="scale_0_1")(inputs)
    if architecture == "mlp":  # the seed's classifier
        x = layers.Flatten()(x)
        x = layers.Dense(128, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
    elif architecture == "cnn":
        x = layers.Reshape((*input_shape[:2], 1) if len(input_shape) == 2 else input_shape)(x)
        x = layers.Conv2D(16, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Conv2D(32, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.2)(x)
    else:
        raise ValueError(f"unknown architecture {architecture!r}; allowed: mlp, cnn")
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"{architecture}_classifier")


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
    model = build_model(config.architecture, x_train.shape[1:], num_classes)
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
        verbose=1,
    )
    return model, {k: [round(float(v), 6) for v in vs] for k, vs in history.history.items()}


def keras_probabilities(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=512, verbose=0)
