"""local.cloudwatch: EMF log lines -> PutMetricData, what CloudWatch Logs does in AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from local.cloudwatch import EmfForwarder, is_emf, metric_data

# What the inference function prints for one prediction (emf.request's shape)
DOCUMENT = {
    "_aws": {
        "Timestamp": 1764300000123,
        "CloudWatchMetrics": [
            {
                "Namespace": "ServerlessML",
                "Dimensions": [["service"], ["service", "model_version"]],
                "Metrics": [{"Name": "Confidence", "Unit": "None"}, {"Name": "BlankInputs"}],
            }
        ],
    },
    "service": "stack",
    "model_version": "7",
    "Confidence": [0.5, 0.9, 0.9],
    "BlankInputs": 1,
}


def test_each_metric_and_dimension_set_becomes_one_datum_with_its_values():
    ((namespace, datums),) = metric_data(DOCUMENT).items()
    assert namespace == "ServerlessML" and len(datums) == 4
    by_key = {(d["MetricName"], len(d["Dimensions"])): d for d in datums}
    confidence = by_key[("Confidence", 2)]
    assert confidence["Dimensions"] == [
        {"Name": "service", "Value": "stack"},
        {"Name": "model_version", "Value": "7"},
    ]
    # repeated values are counted, as CloudWatch's Values/Counts pairs say: 3 samples
    assert dict(zip(confidence["Values"], confidence["Counts"], strict=True)) == {0.5: 1, 0.9: 2}
    assert confidence["Timestamp"] == datetime(2025, 11, 28, 3, 20, 0, 123000, UTC)
    assert confidence["Unit"] == "None"
    blank = by_key[("BlankInputs", 1)]
    assert (blank["Values"], blank["Counts"], blank["Unit"]) == ([1.0], [1.0], "None")
    assert blank["Dimensions"] == [{"Name": "service", "Value": "stack"}]


def test_what_is_not_emf_is_told_apart():
    assert is_emf(json.dumps(DOCUMENT).encode()) and is_emf(json.dumps(DOCUMENT))
    assert not is_emf(b'{"level": "INFO", "message": "model loaded"}')
    assert not is_emf(b'START RequestId: 1 "_aws"')
    with pytest.raises(ValueError, match="not an EMF document"):
        metric_data({"_aws": {"Timestamp": 1}})


class FakeCloudWatch:
    def __init__(self, fail: bool = False):
        self.calls: list[dict] = []
        self.fail = fail

    def put_metric_data(self, **kwargs):
        if self.fail:
            raise ConnectionError("nothing listens")
        self.calls.append(kwargs)


def test_forwarder_sends_the_lines_it_kept_at_flush_and_only_emf():
    client = FakeCloudWatch()
    forwarder = EmfForwarder(client)
    forwarder(json.dumps(DOCUMENT).encode() + b"\n")
    forwarder(b"REPORT RequestId: 1\tDuration: 1 ms\n")
    forwarder(b'{not json but "_aws"\n')  # a broken line is skipped (and said once)
    assert client.calls == []  # nothing before the flush
    forwarder.flush()
    (call,) = client.calls
    assert call["Namespace"] == "ServerlessML" and len(call["MetricData"]) == 4
    assert forwarder.forwarded == 4
    forwarder.flush()  # nothing pending: no call
    assert len(client.calls) == 1


def test_an_unreachable_cloudwatch_never_stops_the_runner(capsys):
    forwarder = EmfForwarder(FakeCloudWatch(fail=True))
    for _ in range(2):
        forwarder(json.dumps(DOCUMENT))
        forwarder.flush()
    assert capsys.readouterr().err.count("could not be forwarded") == 1
    assert forwarder.forwarded == 0


def test_forwarding_only_with_a_local_cloudwatch():
    assert EmfForwarder.from_environment({}) is None
    endpoint = {"AWS_ENDPOINT_URL_CLOUDWATCH": "http://127.0.0.1:4566"}
    assert isinstance(EmfForwarder.from_environment(endpoint), EmfForwarder)


def test_directives_of_one_document_each_take_their_own_dimensions():
    document = {
        "_aws": {
            "Timestamp": 1764300000123,
            "CloudWatchMetrics": [
                {
                    "Namespace": "ServerlessML",
                    "Dimensions": [["service", "model_version"]],
                    "Metrics": [{"Name": "Confidence", "Unit": "None"}],
                },
                {
                    "Namespace": "ServerlessML",
                    "Dimensions": [["service", "model_version", "label"]],
                    "Metrics": [{"Name": "Predictions", "Unit": "Count"}],
                },
            ],
        },
        "service": "stack",
        "model_version": "7",
        "label": "3",
        "Confidence": [0.9],
        "Predictions": 1,
    }
    datums = metric_data(document)["ServerlessML"]
    dimensions = {d["MetricName"]: [x["Name"] for x in d["Dimensions"]] for d in datums}
    assert dimensions == {
        "Confidence": ["service", "model_version"],
        "Predictions": ["service", "model_version", "label"],
    }
