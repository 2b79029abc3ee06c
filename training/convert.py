"""Keras model -> TFLite flatbuffer bytes, in one of the quantization modes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from training.config import QUANTIZE_MODES, check_choice


def representative_dataset(x: np.ndarray, size: int, seed: int):
    """Calibration samples drawn from the training split, one example per step."""
    picked = np.random.default_rng(seed).permutation(len(x))[:size]

    def generate() -> Iterator[list[np.ndarray]]:
        for i in picked:
            yield [x[i : i + 1].astype(np.float32)]

    return generate


def convert(model: tf.keras.Model, mode: str, representative_data=None) -> bytes:
    """mode: int8 (full-integer PTQ, int8 input and output; needs representative_data),
    float16 (float16 weights), dynamic (int8 weights, float activations), none (float32)."""
    check_choice("quantization mode", mode, QUANTIZE_MODES)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative_data is None:
            raise ValueError("int8 quantization needs representative data (calibration samples)")
        converter.representative_dataset = representative_data
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()
