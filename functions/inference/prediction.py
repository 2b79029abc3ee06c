"""From the model's outputs to the answers the API (and a batch job's records) return."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tfserving
from errors import ApiError

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


def generic_predictions(
    model: Any,
    payload: dict[str, Any],
    booleans_possible: bool,
    max_instances: int,
    run: Callable[[Any, dict[str, np.ndarray]], dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    """/predict's answer for a generic model (also a batch job's record of one JSON object):
    `instances` in TF Serving's row format for its default signature, run by `run(signature,
    arrays)`; per instance every output by name and, for a model with labels, its label output
    classified (label, class_id, confidence, probabilities, top)."""
    signature = model.signatures[model.default_signature]
    if "images" in payload:
        raise ApiError(
            "UNKNOWN_INPUT",
            "'images' is for image classifiers; this model's inputs are "
            f"{', '.join(signature.input_names)}: send them as 'instances'",
        )
    if "instances" not in payload:
        raise ApiError(
            "MISSING_FIELD",
            f"the body needs 'instances' (this model's inputs: {', '.join(signature.input_names)})",
        )
    _, inputs = tfserving.predict_input({"instances": payload["instances"]}, signature.input_names)
    outputs = run(
        signature,
        tfserving.input_arrays(signature, inputs, "instances", booleans_possible, max_instances),
    )
    count = next(iter(outputs.values())).shape[0]
    if any(array.ndim == 0 or array.shape[0] != count for array in outputs.values()):
        raise ApiError(
            "INVALID_SHAPE",
            "this model's outputs do not share their first dimension: call "
            f"/v1/models/{model.name}:predict with 'inputs' (columnar) instead",
        )
    columns = {name: tfserving.as_json(array) for name, array in outputs.items()}
    rows = [
        {"outputs": {name: column[i] for name, column in columns.items()}} for i in range(count)
    ]
    if model.labels:
        classified = classify(outputs[model.label_output].astype(np.float32), model.labels)
        rows = [{**answer, **row} for answer, row in zip(classified, rows, strict=True)]
    return rows
