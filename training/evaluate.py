"""Evaluation of the converted model through the function's own predictor (mlcore.predictor,
LiteRT), and the accuracy gate. No TensorFlow import here."""

from __future__ import annotations

import numpy as np

from mlcore.predictor import Predictor


class AccuracyGateError(Exception):
    """The converted model lost more accuracy than allowed; nothing may be published."""


def tflite_specs(model_content: bytes) -> tuple[dict, dict]:
    """The manifest's input and output tensor specs of a converted model."""
    predictor = Predictor.from_bytes(model_content)
    return predictor.input_spec, predictor.output_spec


def tflite_probabilities(model_content: bytes, x: np.ndarray) -> np.ndarray:
    """Probabilities for a batch of raw inputs, as the function computes them (one invoke)."""
    return Predictor.from_bytes(model_content).predict(x)


def accuracy(probabilities: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def accuracy_drop_points(float_accuracy: float, quantized_accuracy: float) -> float:
    return round((float_accuracy - quantized_accuracy) * 100, 4)


def check_accuracy_gate(float_accuracy: float, quantized_accuracy: float, max_drop: float) -> float:
    """Returns the drop in percentage points; raises when it exceeds max_drop."""
    drop = accuracy_drop_points(float_accuracy, quantized_accuracy)
    if drop > max_drop:
        raise AccuracyGateError(
            f"quantized accuracy {quantized_accuracy:.2%} is {drop:.2f} points below the float "
            f"model's {float_accuracy:.2%}; at most {max_drop:.2f} allowed (--max-accuracy-drop)"
        )
    return drop
