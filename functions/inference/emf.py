"""The function's own CloudWatch embedded metric format (EMF) documents, one JSON line each.

Which metrics go where, one rule: a metric with a dimension that belongs to the request (its
`role`, error `code`, predicted `label` or input `channel`) is written here; a metric with only
the function's own dimensions (`service`, and `model_version` once a model is loaded) goes
through Powertools' Metrics in app.py (ColdStart, ModelLoadTime and the other load timings,
CaptureWrites, CaptureFailures, CanaryNotServed). Powertools' Metrics holds one list of
dimension sets for everything it flushes in an invocation, so it cannot give each metric its own;
and its add_metric formats the metric's whole value list in a debug message on every call (O(n^2)
for one value per prediction: 6 ms at 256), and its flush would be a second document per request.

The documents follow the specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
and are printed as Powertools prints its own: several directives over the same root fields,
each naming its own dimension sets, at most MAX_VALUES values per metric. CloudWatch drops a
malformed document silently (and the alarms on its metrics with it), so the tests validate what
this module writes against the specification's JSON schema (tests/fixtures/emf/).
"""

from __future__ import annotations

import collections
import functools
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from mlcore.stats import channel_means_and_blanks

MAX_VALUES = 100  # values of one metric in one document (the specification's limit)
# Dimension sets: each request metric per service, per model and version (as the drift monitor
# queries them: one stack may serve several models, models.py) and per role (stable, canary).
# Each distinct combination of dimension values is one custom metric in CloudWatch's bill: per
# model, its versions' series (docs/multi-model.md counts them).
PER_VERSION = (("service",), ("service", "model", "model_version"), ("service", "role"))
PER_CHANNEL = (("service", "model", "model_version", "channel"),)
PER_LABEL = (("service", "label"), ("service", "model", "model_version", "label"))
# (metric name, unit)
REQUEST = (("InferenceTime", "Milliseconds"), ("InstancesPerRequest", "Count"))
BLANK = (("BlankInputs", "Count"),)
CONFIDENCE = (("Confidence", "None"),)
INTENSITY = (("InputMeanIntensity", "None"),)
PREDICTIONS = (("Predictions", "Count"),)
# a prediction's first (usually only) document: emf.request
REQUEST_DOCUMENT = (
    (PER_VERSION, REQUEST + BLANK + CONFIDENCE),
    (PER_CHANNEL, INTENSITY),
    (PER_LABEL, PREDICTIONS),
)

# A directive: (dimension sets, ((metric name, unit), ...)).
Directives = tuple


@functools.lru_cache(maxsize=32)
def _head(namespace: str | None, directives: Directives) -> str:
    """A document's start up to its timestamp: the CloudWatchMetrics array is the same for
    every request with these directives, so it is serialised once."""
    array = json.dumps(
        [
            {
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in names],
            }
            for dimension_sets, names in directives
        ],
        separators=(",", ":"),
    )
    return f'{{"_aws":{{"CloudWatchMetrics":{array},"Timestamp":'


def document(namespace: str | None, directives: Directives, timestamp_ms: int, **fields) -> str:
    """One EMF document: the directives over these root fields (dimension values and metric
    values, each directive using the ones it names)."""
    return _document(_head(namespace, directives), timestamp_ms, fields)


def _document(head: str, timestamp_ms: int, fields: dict[str, Any]) -> str:
    # orjson: the json module's values (numbers written shortest-exact, so 1e-05 may read
    # 0.00001; UTF-8 where json escapes) in a tenth of its time: 0.3 against 4 us a document
    return f"{head}{timestamp_ms}}},{orjson.dumps(fields).decode()[1:]}"


def write(namespace: str | None, directives: Directives, **fields: Any) -> None:
    """Print one document stamped now (Lambda sends stdout to CloudWatch Logs)."""
    _print(_head(namespace, directives), fields)


def _print(head: str, fields: dict[str, Any]) -> None:
    # one write: print writes the line and its newline apart
    sys.stdout.write(f"{_document(head, int(time.time() * 1000), fields)}\n")


def model_load_failure(namespace: str | None, service: str, role: str) -> None:
    """ModelLoadFailures: one document, one value in two series, per service (what the alarm
    watches) and per service and role."""
    write(
        namespace,
        (((("service",), ("service", "role")), (("ModelLoadFailures", "Count"),)),),
        service=service,
        role=role,
        ModelLoadFailures=1,
    )


def request_error(
    namespace: str | None, service: str, code: str, client_error: bool, role: str | None
) -> None:
    """InvalidRequests (a 4xx) or ServerErrors per service and code; a server error after a
    model was chosen (role) also per service and role."""
    name = "InvalidRequests" if client_error else "ServerErrors"
    role = None if client_error else role
    per_role = (("service", "role"),) if role else ()
    write(
        namespace,
        (((("service", "code"), *per_role), ((name, "Count"),)),),
        service=service,
        code=code,
        **({"role": role} if role else {}),
        **{name: 1},
    )


def request(
    namespace: str | None,
    service: str,
    model: str,
    model_version: str,
    role: str,
    labels: Sequence[str],
    batch: np.ndarray,
    probabilities: np.ndarray,
    inference_ms: float,
    answers: Sequence[dict[str, Any]] | None = None,
    value_range: tuple[float, float] | None = None,
) -> None:
    """A prediction's metrics, per service and per service and model version: InferenceTime,
    InstancesPerRequest, and what the drift monitor (functions/monitor) compares with the
    model's baseline (mlcore.stats): the confidence of each prediction (its top probability),
    the count of blank inputs, each input's mean intensity per channel (dimension `channel`:
    0, or 0 1 2 for R G B; mlcore.stats' own statistic, the one the baseline was computed with)
    and the count of predictions per label.

    All in one document for a grey-scale batch of one label and at most MAX_VALUES inputs;
    only more inputs, more channels or more labels need further documents.

    `answers`: prediction.classify's of these probabilities, when the request made them: their
    confidence and class_id are the same numbers (the top probability, the first class that has
    it), taken from there instead of two more passes over the array. `value_range`: the batch's
    smallest and largest value, where the request checked them (mlcore.stats reuses them)."""
    if answers is None:
        confidences = np.maximum.reduce(probabilities, axis=1).tolist()  # each top probability
        predicted = probabilities.argmax(axis=1).tolist()
    else:
        confidences = [answer["confidence"] for answer in answers]
        predicted = [answer["class_id"] for answer in answers]
    # per channel, each input's mean; the count of blank inputs
    channels, blanks = channel_means_and_blanks(batch, value_range)
    if len(set(predicted)) == 1:  # one label (every batch of one): no counting
        label_counts = [(labels[predicted[0]], len(predicted))]
    else:
        counts = collections.Counter(predicted)
        label_counts = [(labels[i], counts[i]) for i in sorted(counts)]  # in label order
    (label, count), step = label_counts[0], MAX_VALUES
    _print(
        _head(namespace, REQUEST_DOCUMENT),
        {
            "service": service,
            "model": model,
            "model_version": model_version,
            "role": role,
            "channel": "0",
            "label": label,
            "InferenceTime": inference_ms,
            "InstancesPerRequest": len(batch),
            "BlankInputs": [blanks],
            "Confidence": confidences[:step],
            "InputMeanIntensity": channels[0][:step],
            "Predictions": count,
        },
    )
    for start in range(step, len(confidences), step):
        write(
            namespace,
            ((PER_VERSION, CONFIDENCE), (PER_CHANNEL, INTENSITY)),
            service=service,
            model=model,
            model_version=model_version,
            role=role,
            channel="0",
            Confidence=confidences[start : start + step],
            InputMeanIntensity=channels[0][start : start + step],
        )
    for channel, values in enumerate(channels[1:], start=1):
        for start in range(0, len(values), step):
            write(
                namespace,
                ((PER_CHANNEL, INTENSITY),),
                service=service,
                model=model,
                model_version=model_version,
                channel=str(channel),
                InputMeanIntensity=values[start : start + step],
            )
    for label, count in label_counts[1:]:
        write(
            namespace,
            ((PER_LABEL, PREDICTIONS),),
            service=service,
            model=model,
            model_version=model_version,
            label=label,
            Predictions=count,
        )


def tensors_request(
    namespace: str | None,
    service: str,
    model: str,
    model_version: str,
    role: str,
    instances: int,
    inference_ms: float,
) -> None:
    """A prediction of a generic model (or of another signature than an image classifier's
    own): InferenceTime and InstancesPerRequest, per service, model version and role. The
    drift monitor's figures (confidence, labels, input intensity) are an image classifier's."""
    dimensions = {"service": service, "model": model, "model_version": model_version, "role": role}
    metrics = {"InferenceTime": inference_ms, "InstancesPerRequest": instances}
    write(namespace, ((PER_VERSION, REQUEST),), **dimensions, **metrics)


# The batch function's (batch.py): per batch, per service and model version
PER_MODEL = (("service",), ("service", "model_version"))
BATCH = (("BatchObjects", "Count"), ("BatchAnswers", "Count"), ("BatchDuration", "Milliseconds"))


def batch(
    namespace: str | None,
    service: str,
    model_version: str,
    objects: int,
    answered: int,
    errors: dict[str, int],
    duration_ms: float,
) -> None:
    """A batch's metrics: its objects, those answered and its duration per service and model
    version; ObjectErrors per service and code (each object without an answer), one document
    per code."""
    figures = {"BatchObjects": objects, "BatchAnswers": answered, "BatchDuration": duration_ms}
    write(namespace, ((PER_MODEL, BATCH),), service=service, model_version=model_version, **figures)
    for code, count in sorted(errors.items()):
        write(
            namespace,
            (((("service", "code"),), (("ObjectErrors", "Count"),)),),
            service=service,
            code=code,
            ObjectErrors=count,
        )
