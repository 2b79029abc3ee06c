"""The function's metrics documents against the CloudWatch embedded metric format
specification: its published JSON schema (tests/fixtures/emf/) and the rules of its text
(tests/emf_spec.py). CloudWatch drops a malformed document silently, and the alarms on its
metrics with it, so every kind of document the function prints is held to them here."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import emf
from tests import emf_spec
from tests.function_support import FakeS3, invoke, new_version, with_body

# The specification's own example of a valid document (the same page as the schema)
SPEC_EXAMPLE = {
    "_aws": {
        "Timestamp": 1574109732004,
        "CloudWatchMetrics": [
            {
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}],
            }
        ],
    },
    "functionVersion": "$LATEST",
    "time": 100,
    "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
}


def broken(change) -> str:
    document = json.loads(json.dumps(SPEC_EXAMPLE))
    change(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["_aws"].pop("Timestamp"),
        lambda d: d["_aws"].update(Timestamp="1574109732004"),
        lambda d: d["_aws"]["CloudWatchMetrics"][0].pop("Namespace"),
        lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Namespace=None),
        lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="ms"),
        lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[]),
        lambda d: d.pop("functionVersion"),  # a dimension the root does not hold
        lambda d: d.update(functionVersion=3),  # a dimension's value must be a string
        lambda d: d.update(time="100"),  # a metric's value must be a number
        lambda d: d.update(time=list(range(101))),  # at most 100 values
    ],
)
def test_what_cloudwatch_would_drop_is_caught(change):
    assert emf_spec.problems(json.dumps(SPEC_EXAMPLE)) == []
    assert emf_spec.problems(broken(change))


def test_a_document_of_every_shape_meets_the_specification(capsys):
    """emf.request's every branch: more than 100 inputs, three channels, several labels."""
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (250, 8, 8, 3)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(12), 250)
    labels = [f"étiquette {i}" for i in range(12)]
    emf.request("ns", "s", "m", "1", "stable", labels, batch, probabilities, 2.0)
    records = emf_spec.valid_records(capsys.readouterr().out)
    # the first document, the confidences beyond 100 (two), channels 1 and 2 (three each), and
    # the other labels (eleven)
    assert len(records) == 1 + 2 + 2 * 3 + 11
    for channel in ("0", "1", "2"):
        values = [
            v for r in records if r.get("channel") == channel for v in r["InputMeanIntensity"]
        ]
        assert len(values) == 250
    assert sum(r["Predictions"] for r in records if "Predictions" in r) == 250
    assert sum(len(r["Confidence"]) for r in records if "Confidence" in r) == 250


def test_every_document_the_handler_prints_meets_the_specification(
    serve, load_event, manifest, model_bytes, clock, monkeypatch, capsys
):
    """A cold start (Powertools: ColdStart, the load timings), predictions of more than 100
    inputs, a client error, a server error after a model was chosen, and a refused version
    (ModelLoadFailures)."""
    import app

    s3 = FakeS3()
    s3.publish(manifest, model_bytes)
    store = serve(s3, refresh_seconds=10)
    event = load_event("predict-instances.json")
    assert invoke(event).status == 200
    (seven,) = json.loads(base64.b64decode(event["body"]))["instances"]
    assert invoke(with_body(event, json.dumps({"instances": [seven] * 150}))).status == 200
    assert invoke(load_event("bad-shape.json")).status == 400
    with monkeypatch.context() as patched:
        patched.setattr(app, "classify", lambda *args: 1 / 0)
        assert invoke(event).status == 500
    s3.publish(new_version(manifest, manifest["version"] + 1), model_bytes[:-1])
    clock.advance(11)
    invoke(load_event("health-deep.json"))
    assert store.wait(10)
    invoke(load_event("health-deep.json"))
    records = emf_spec.valid_records(capsys.readouterr().out)  # each one checked
    directives = [d for r in records for d in r["_aws"]["CloudWatchMetrics"]]
    assert {m["Name"] for d in directives for m in d["Metrics"]} >= {
        "ColdStart",
        "ModelLoadTime",
        "InferenceTime",
        "Confidence",
        "InputMeanIntensity",
        "Predictions",
        "InvalidRequests",
        "ServerErrors",
        "ModelLoadFailures",
    }


@pytest.mark.parametrize("n", [1, 3, 150])
def test_the_document_from_classify_answers_is_the_one_from_the_probabilities(n, capsys):
    """/predict hands emf.request the answers it made (prediction.classify) and the range it
    checked: their confidence and class_id, and that range, give the same document (ties
    included: the first class wins) as the probabilities and the batch alone do."""
    from prediction import classify

    rng = np.random.default_rng(n)
    batch = rng.integers(0, 256, (n, 28, 28, 1)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(10), n).astype(np.float32)
    probabilities[0, 3] = probabilities[0, 7] = 1.0  # a tie
    labels = [str(i) for i in range(10)]
    documents = []
    checked = (float(batch.min()), float(batch.max()))  # the range check's own figures
    for answers, value_range in ((None, None), (classify(probabilities, labels), checked)):
        emf.request(
            "ns", "s", "m", "1", "stable", labels, batch, probabilities, 2.0, answers, value_range
        )
        documents.append(
            [
                {k: v for k, v in json.loads(line).items() if k != "_aws"}
                | {"_aws": json.loads(line)["_aws"]["CloudWatchMetrics"]}
                for line in capsys.readouterr().out.splitlines()
            ]
        )
    assert documents[0] == documents[1]
    assert documents[0][0]["label"] == "3" or n > 1
