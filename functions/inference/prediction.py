"""From the model's probabilities to the answers the API returns."""

from __future__ import annotations

from typing import Any

import numpy as np

TOP_K = 3  # classes named in each answer's "top" (what a person reads: the page shows them)


def classify(probabilities: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """One answer per row: the top class, its label and confidence, every probability, and the
    TOP_K most probable classes by name, highest first (ties: the lower class id first)."""
    # the array's own argsort: np.argsort's Python-level dispatch is most of its cost here
    ranked = (-probabilities).argsort(axis=1, kind="stable")[:, :TOP_K].tolist()
    rows = probabilities.astype(np.float64).tolist()
    return [
        {
            "label": labels[order[0]],
            "class_id": order[0],
            "confidence": row[order[0]],
            "probabilities": row,
            "top": [{"label": labels[i], "confidence": row[i]} for i in order],
        }
        for order, row in zip(ranked, rows, strict=True)
    ]
