"""What both baselines (the floor and the seed's path) do the same way on the API Gateway event,
so their only difference is the model runtime: the body decoded with the standard library, the
answer encoded as JSON. Standard library and numpy only (both baselines import numpy anyway)."""

from __future__ import annotations

import base64
import json

import numpy as np

LABELS = [str(i) for i in range(10)]


def read_instances(event: dict) -> np.ndarray:
    body = event["body"]
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return np.asarray(json.loads(body)["instances"], dtype=np.float32)


def answer(probabilities: np.ndarray) -> dict:
    top = probabilities.argmax(axis=1).tolist()
    predictions = [
        {"label": LABELS[c], "probabilities": row}
        for c, row in zip(top, probabilities.tolist(), strict=True)
    ]
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"predictions": predictions}),
    }
