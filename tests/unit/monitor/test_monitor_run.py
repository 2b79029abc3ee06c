"""monitor.py: one run of the drift monitor against fakes of S3 and CloudWatch (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from local.bootstrap import LambdaContext
from mlcore import stats
from tests.function_support import (
    EVENTS_DIR,
    FIXTURE_DIR,
    SERVICE_NAME,
    FakeS3,
    emf_records,
    fixture_manifest,
    fixture_model,
    new_version,
)

MANIFEST = fixture_manifest()
VERSION = MANIFEST["version"]


class FakeCloudWatch:
    """GetMetricData over data points given as (metric, dimensions, values): Sum and
    SampleCount of the values whose dimensions are exactly the query's (as CloudWatch)."""

    def __init__(self, points):
        self.points = points
        self.calls: list[dict] = []

    def get_paginator(self, operation):
        assert operation == "get_metric_data"
        return self

    def paginate(self, MetricDataQueries, StartTime, EndTime):  # noqa: N803 (boto3's names)
        self.calls.append({"queries": MetricDataQueries, "start": StartTime, "end": EndTime})
        results = []
        for query in MetricDataQueries:
            stat, metric = query["MetricStat"], query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            values = [
                v
                for name, where, series in self.points
                if name == metric["MetricName"] and where == dims
                for v in series
            ]
            total = sum(values) if stat["Stat"] == "Sum" else len(values)
            results.append({"Id": query["Id"], "Values": [total] if values else []})
        return [{"MetricDataResults": results}]


def traffic(
    x: np.ndarray,
    predicted: np.ndarray,
    confidence: float,
    version: int = VERSION,
    model: str = "mnist",
):
    """The data points the inference function's metrics give for these inputs and answers."""
    per_version = {"service": SERVICE_NAME, "model": model, "model_version": str(version)}
    means, blank = stats.input_statistics(x)
    points = [
        ("Confidence", per_version, [confidence] * len(x)),
        ("BlankInputs", per_version, [int(blank.sum())]),
        ("InputMeanIntensity", {**per_version, "channel": "0"}, means[:, 0].tolist()),
    ]
    for label in np.unique(predicted):
        count = int((predicted == label).sum())
        points.append(("Predictions", {**per_version, "label": str(label)}, [count]))
    return points


def digits():
    with np.load(FIXTURE_DIR / "digits.npz") as data:
        return data["x"], data["expected"]


def install(monitor, monkeypatch, points, manifest=MANIFEST) -> FakeCloudWatch:
    s3 = FakeS3()
    s3.publish(manifest, fixture_model())
    cloudwatch = FakeCloudWatch(points)
    monkeypatch.setattr(monitor, "get_clients", lambda: (s3, cloudwatch))
    return cloudwatch


def run(monitor, capsys):
    answer = monitor.lambda_handler(
        json.loads((EVENTS_DIR / "monitor-schedule.json").read_text()),
        LambdaContext(function_name="MonitorFunction"),
    )
    return answer, emf_records(capsys.readouterr().out)


def published(records, name: str) -> dict[tuple, float]:
    """{dimension set: value} of metric `name` in the EMF records."""
    out = {}
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            if name in {m["Name"] for m in directive["Metrics"]}:
                value = record[name]
                for dims in directive["Dimensions"]:
                    key = tuple(sorted((k, record[k]) for k in dims))
                    out[key] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return out


def test_a_window_like_the_baseline_stays_low(fresh_monitor, monkeypatch, capsys):
    x, predicted = digits()
    install(fresh_monitor, monkeypatch, traffic(x, predicted, 0.93))
    answer, records = run(fresh_monitor, capsys)
    (verdict,) = answer["versions"]
    assert verdict["status"] == "judged" and verdict["predictions"] == 500
    assert verdict["psi"] < 0.01 and abs(verdict["confidence_drop"]) < 0.05
    assert verdict["input_shift"] < 0.01
    psi = published(records, "PredictionPSI")
    # per service (the alarm's series), per service, model and version, per service and role
    assert set(psi) == {
        (("service", SERVICE_NAME),),
        (("model", "mnist"), ("model_version", str(VERSION)), ("service", SERVICE_NAME)),
        (("role", "stable"), ("service", SERVICE_NAME)),
    }
    assert published(records, "MonitoredPredictions")[(("service", SERVICE_NAME),)] == 500


def test_a_skewed_window_raises_every_figure(fresh_monitor, monkeypatch, capsys):
    x, predicted = digits()
    sevens = predicted == 7
    skewed = np.concatenate([255 - x[sevens]] * 5)  # inverted images, all answered "7"
    install(fresh_monitor, monkeypatch, traffic(skewed, np.full(len(skewed), 7), 0.55))
    answer, records = run(fresh_monitor, capsys)
    (verdict,) = answer["versions"]
    assert verdict["psi"] > 1 and verdict["confidence_drop"] > 0.5
    assert verdict["input_shift"] > 1
    for name in ("PredictionPSI", "ConfidenceDrop", "InputShift"):
        assert published(records, name)[(("service", SERVICE_NAME),)] > 0.5, name


def test_the_window_is_the_last_one_on_whole_minutes_before_the_lag(fresh_monitor, monkeypatch):
    monkeypatch.setenv("MONITOR_LAG_SECONDS", "180")
    settings = fresh_monitor.load_settings()
    start, end = fresh_monitor.window_bounds(1764300125.5, settings)  # 03:22:05.5
    assert end == datetime(2025, 11, 28, 3, 20, tzinfo=UTC)  # 03:19:05.5, to the next minute
    assert (end - start).total_seconds() == settings.window_minutes * 60 == 3600
    # the next run, an hour later, judges the next hour: nothing twice, nothing left out
    later, _ = fresh_monitor.window_bounds(1764300125.5 + 3600 + 20, settings)
    assert later == end


def test_queries_name_the_version_and_each_label(fresh_monitor, monkeypatch, capsys):
    cloudwatch = install(fresh_monitor, monkeypatch, [])
    answer, _ = run(fresh_monitor, capsys)
    (call,) = cloudwatch.calls
    metrics = {q["MetricStat"]["Metric"]["MetricName"] for q in call["queries"]}
    assert metrics == {"Confidence", "Predictions", "InputMeanIntensity", "BlankInputs"}
    stats_used = {q["MetricStat"]["Stat"] for q in call["queries"]}
    assert stats_used <= {"Sum", "SampleCount"}  # what the pinned moto answers
    labels = {
        d["Value"]
        for q in call["queries"]
        for d in q["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "label"
    }
    assert labels == set(MANIFEST["labels"])
    for query in call["queries"]:
        dims = {d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]}
        assert dims["model_version"] == str(VERSION) and dims["service"] == SERVICE_NAME


def test_too_few_predictions_publish_only_the_count(fresh_monitor, monkeypatch, capsys):
    x, predicted = digits()
    install(fresh_monitor, monkeypatch, traffic(x[:50], predicted[:50], 0.5))
    answer, records = run(fresh_monitor, capsys)
    (verdict,) = answer["versions"]
    assert verdict["predictions"] == 50 and verdict["status"].startswith("too few")
    assert published(records, "MonitoredPredictions")[(("service", SERVICE_NAME),)] == 50
    assert not published(records, "PredictionPSI")


def test_a_manifest_without_baseline_is_not_judged(fresh_monitor, monkeypatch, capsys):
    old = {k: v for k, v in new_version(MANIFEST, VERSION).items() if k != "baseline"}
    x, predicted = digits()
    install(fresh_monitor, monkeypatch, traffic(x, predicted, 0.93), manifest=old)
    answer, records = run(fresh_monitor, capsys)
    assert answer["versions"][0]["status"].startswith("no baseline")
    assert not published(records, "PredictionPSI")


def test_a_pinned_version_is_the_one_judged(fresh_monitor, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_VERSION", str(VERSION))
    cloudwatch = install(fresh_monitor, monkeypatch, [])
    answer, _ = run(fresh_monitor, capsys)
    assert [v["version"] for v in answer["versions"]] == [VERSION]
    assert cloudwatch.calls


def test_an_unreadable_registry_fails_the_run(fresh_monitor, monkeypatch):
    s3 = FakeS3()  # no pointer
    monkeypatch.setattr(fresh_monitor, "get_clients", lambda: (s3, FakeCloudWatch([])))
    with pytest.raises(KeyError, match="NoSuchKey"):
        fresh_monitor.run()


def test_a_model_canary_is_judged_beside_the_stable_version_per_role(
    fresh_monitor, monkeypatch, capsys
):
    """The pointer's canary is judged against its own baseline, and each role's figures go to
    its own series (the per-role confidence-drop alarms' dimensions)."""
    from mlcore.registry import Pointer, Registry

    x, predicted = digits()
    canary = VERSION + 1
    cloudwatch = install(
        fresh_monitor,
        monkeypatch,
        traffic(x, predicted, 0.93) + traffic(x, predicted, 0.55, version=canary),
    )
    s3 = fresh_monitor.get_clients()[0]
    s3.publish(new_version(MANIFEST, canary), fixture_model(), pointer=False)
    registry = Registry("models", MANIFEST["name"])  # where FakeS3.publish puts it
    pointer = Pointer.first(VERSION, "2026-11-30T00:00:00Z").with_canary(canary, 10, "now")
    s3.objects[registry.pointer_key] = json.dumps(pointer.document(registry)).encode()

    answer, records = run(fresh_monitor, capsys)
    roles = {v["role"]: v for v in answer["versions"]}
    assert roles["stable"]["version"] == VERSION and roles["canary"]["version"] == canary
    assert roles["stable"]["confidence_drop"] < 0.05 < 0.5 < roles["canary"]["confidence_drop"]
    drop = published(records, "ConfidenceDrop")
    assert drop[(("role", "stable"), ("service", SERVICE_NAME))] < 0.05
    assert drop[(("role", "canary"), ("service", SERVICE_NAME))] > 0.5
    assert len(cloudwatch.calls) == 2


def test_each_served_model_is_judged_against_its_own_baseline(fresh_monitor, monkeypatch, capsys):
    """ModelNames: the same traffic (confidence 0.55) is a drop for mnist, whose baseline is
    confident (0.93), and none for a second model whose own baseline is 0.55; each model's
    figures go to its own series (service, model, model_version)."""
    monkeypatch.setenv("MODEL_NAMES", "*")
    fresh_monitor.get_settings.cache_clear()
    x, predicted = digits()
    unsure = json.loads(json.dumps(MANIFEST))
    unsure["name"] = "unsure"
    unsure["baseline"]["confidence"]["mean"] = 0.55
    cloudwatch = install(
        fresh_monitor,
        monkeypatch,
        traffic(x, predicted, 0.55) + traffic(x, predicted, 0.55, model="unsure"),
    )
    fresh_monitor.get_clients()[0].publish(unsure, fixture_model(), name="unsure")

    answer, records = run(fresh_monitor, capsys)
    assert answer["models"] == ["mnist", "unsure"]  # listed under the prefix
    judged = {v["model"]: v for v in answer["versions"]}
    assert judged["mnist"]["confidence_drop"] > 0.5
    assert abs(judged["unsure"]["confidence_drop"]) < 0.05
    drop = published(records, "ConfidenceDrop")
    for model, verdict in judged.items():
        key = (("model", model), ("model_version", str(VERSION)), ("service", SERVICE_NAME))
        assert drop[key] == pytest.approx(verdict["confidence_drop"])
    assert len(cloudwatch.calls) == 2


def test_a_model_that_cannot_be_read_fails_the_run_after_the_others_are_judged(
    fresh_monitor, monkeypatch, capsys
):
    monkeypatch.setenv("MODEL_NAMES", "absent")
    fresh_monitor.get_settings.cache_clear()
    x, predicted = digits()
    cloudwatch = install(fresh_monitor, monkeypatch, traffic(x, predicted, 0.93))
    with pytest.raises(fresh_monitor.MonitorFailed, match="absent"):
        fresh_monitor.run()
    assert len(cloudwatch.calls) == 1  # mnist was judged
