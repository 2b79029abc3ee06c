"""Evaluation of the converted model through the function's own predictor (mlcore.predictor,
LiteRT), and the accuracy gate. No TensorFlow import here."""

from __future__ import annotations

import math

import numpy as np

from mlcore.predictor import Predictor

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


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


def wilson_interval(correct: int, n: int, z: float = Z_95) -> list[float]:
    """95% confidence interval of a proportion (Wilson score interval): honest for small n
    and for accuracies near 1, where the normal approximation leaves [0, 1]."""
    if n == 0:
        return [0.0, 1.0]
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def proportion(correct: int, n: int) -> dict:
    """An accuracy as every report shows it: the fraction, its 95% interval and its n."""
    return {
        "accuracy": round(correct / n, 6) if n else 0.0,
        "ci95": wilson_interval(correct, n),
        "n": int(n),
    }


def describe_accuracy(score: dict) -> str:
    """'94.20% (91.8% to 95.9%, n=500)': an accuracy is never shown without its interval."""
    low, high = score["ci95"]
    return f"{score['accuracy']:.2%} ({low:.1%} to {high:.1%}, n={score['n']})"


def scorecard(predicted: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Accuracy with its interval, per class, and the confusion matrix (rows: true class,
    columns: predicted class, in the order of `labels`)."""
    predicted, y = np.asarray(predicted), np.asarray(y)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    per_class = {
        label: proportion(int(confusion[i, i]), int(confusion[i].sum()))
        for i, label in enumerate(labels)
    }
    return {
        **proportion(int(np.trace(confusion)), len(y)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


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
