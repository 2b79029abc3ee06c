"""From the model's probabilities to the answers the API returns."""

from __future__ import annotations

from typing import Any

import numpy as np


def classify(probabilities: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """One answer per row: the top class, its label and confidence, and every probability."""
    top = probabilities.argmax(axis=1)
    rows = probabilities.astype(np.float64).tolist()
    return [
        {
            "label": labels[class_id],
            "class_id": int(class_id),
            "confidence": row[class_id],
            "probabilities": row,
        }
        for class_id, row in zip(top.tolist(), rows, strict=True)
    ]
