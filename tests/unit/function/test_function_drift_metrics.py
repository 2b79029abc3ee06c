"""What the inference function emits for the drift monitor (emf.request): per
prediction and per input, per service and model version, on both predict routes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlcore import stats
from tests.function_support import (
    FIXTURE_DIR,
    SERVICE_NAME,
    emf_records,
    fixture_manifest,
    invoke,
    metric_values,
    with_body,
)

V1 = str(fixture_manifest()["version"])


@pytest.fixture
def served(serve, fake_s3):
    return serve(fake_s3)


def digits(n: int) -> np.ndarray:
    with np.load(FIXTURE_DIR / "digits.npz") as data:
        return data["x"][:n]


def predict(load_event, x: np.ndarray, route: str = "predict-instances.json"):
    body = json.dumps({"instances": x.astype(int).tolist()})
    result = invoke(with_body(load_event(route), body))
    assert result.status == 200, result.body
    return result


def test_confidence_labels_and_the_input_statistic_per_model_version(served, load_event, capsys):
    x = np.concatenate([digits(5), np.zeros((2, 28, 28), int)])  # two blank inputs
    answers = predict(load_event, x).body["predictions"]
    out = capsys.readouterr().out
    per_version = {"service": SERVICE_NAME, "model_version": V1}
    assert metric_values(out, "Confidence", **per_version) == pytest.approx(
        [a["confidence"] for a in answers]
    )
    assert metric_values(out, "BlankInputs", **per_version) == [2]
    means, _ = stats.input_statistics(x)  # the baseline's own definition
    assert metric_values(out, "InputMeanIntensity", channel="0", **per_version) == pytest.approx(
        means[:, 0].tolist()
    )
    labels = [a["label"] for a in answers]
    for label in set(labels):
        assert metric_values(out, "Predictions", label=label, **per_version) == [
            labels.count(label)
        ]
    # each series exists per model version, as the monitor queries it
    drift_series = {"Confidence", "Predictions", "InputMeanIntensity"}
    for record in (r for r in emf_records(out) if drift_series & set(r)):
        dims = record["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert any(["service", "model", "model_version"] == d[:3] for d in dims), dims


def test_tf_serving_predictions_are_counted_too(served, load_event, capsys):
    x = digits(3)
    body = json.dumps({"instances": x.astype(int).tolist()})
    assert invoke(with_body(load_event("tfserving-predict.json"), body)).status == 200
    out = capsys.readouterr().out
    assert len(metric_values(out, "Confidence", model_version=V1)) == 3
    assert len(metric_values(out, "InputMeanIntensity", model_version=V1)) == 3


def test_a_large_batch_stays_within_cloudwatchs_100_values_per_metric(served, load_event, capsys):
    predict(load_event, np.resize(digits(50), (256, 28, 28)))
    records = emf_records(capsys.readouterr().out)
    confidence = [r for r in records if "Confidence" in r]
    assert [len(r["Confidence"]) for r in confidence] == [100, 100, 56]
    assert sum(r["BlankInputs"][0] for r in confidence if "BlankInputs" in r) == 0
    # the blank count is sent once, not once per document
    assert sum("BlankInputs" in r for r in confidence) == 1


def test_an_emf_document_reads_back_as_the_values_it_was_given(served, capsys):
    import emf

    fields = {"label": "chat noir é", "Confidence": [1e-05, 0.5, 1.7976931348623157e308]}
    fields |= {"InputMeanIntensity": [2.5e-07, 254.99999999999997], "Predictions": 3}
    directives = ((emf.PER_LABEL, emf.PREDICTIONS),)
    emf.write("ns", directives, service="s", model="m", model_version="1", **fields)
    (record,) = emf_records(capsys.readouterr().out)
    assert {k: record[k] for k in fields} == fields  # every number read back exactly
    assert record["service"] == "s" and "CloudWatchMetrics" in record["_aws"]
