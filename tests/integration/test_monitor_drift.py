"""The drift monitor end to end on the loopback moto (S3 and CloudWatch): streams of requests
through the real inference function, in the local runner's execution environment, whose EMF
metrics the runner forwards to CloudWatch as CloudWatch Logs does in AWS; then the real monitor
in its own environment (what `make invoke FUNCTION=MonitorFunction` runs) reads them back with
GetMetricData against the baseline in the model's manifest and publishes its figures, which
are read back from CloudWatch too.

Each stream has its own service name (the stack name in AWS), so the streams' metrics stay
apart in the one CloudWatch. The template's own thresholds decide what is drift.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from local.cloudwatch import EmfForwarder
from local.function import ExecutionEnvironment, load_function
from local.s3 import DUMMY_CREDENTIALS, REGION
from local.template import Template, parse_parameter_overrides
from tests.function_support import with_body
from tests.local_support import (
    FIXTURE_DIR,
    ROOT,
    environ,
    no_leftovers,
    parameters,
    publish_fixture,
)

pytestmark = pytest.mark.integration

EVENTS = ROOT / "events"
TEMPLATE = Template()
THRESHOLDS = {
    "psi": float(TEMPLATE.default("DriftPsiThreshold")),
    "confidence_drop": float(TEMPLATE.default("ConfidenceDropThreshold")),
    "input_shift": float(TEMPLATE.default("InputShiftThreshold")),
}
MIN_PREDICTIONS = int(TEMPLATE.default("MonitorMinPredictions"))
BATCH = 50


def digits():
    """The fixture model's test split (what its baseline was computed on) and its answers."""
    with np.load(FIXTURE_DIR / "digits.npz") as data:
        return data["x"].astype(int), data["expected"]


def streams() -> dict[str, np.ndarray]:
    x, predicted = digits()
    ones = x[predicted == 1]
    resample = np.random.default_rng(7).choice(len(x), len(x), replace=True)
    return {
        # a bootstrap sample of the held-out digits: the baseline's distribution, with the
        # sampling noise of any real window of 500 requests
        "baseline-like": x[resample],
        # prior shift: everyone sends the same digit (4 x its ~52 examples)
        "one-class": np.concatenate([ones] * 4),
        # covariate shift: ink on paper, a light background (the digits inverted)
        "inverted": 255 - x,
    }


@pytest.fixture(scope="module")
def published(s3_server, tmp_path_factory):
    published = publish_fixture(s3_server, tmp_path_factory.mktemp("monitor"))
    published["env"]["AWS_ENDPOINT_URL_CLOUDWATCH"] = s3_server  # moto serves both
    return published


@pytest.fixture(scope="module")
def cloudwatch(s3_server):
    import boto3

    return boto3.client(
        "cloudwatch",
        endpoint_url=s3_server,
        region_name=REGION,
        **{k.lower(): v for k, v in DUMMY_CREDENTIALS.items()},
    )


def env_vars(service: str) -> dict:
    """sam's --env-vars: this stream's service name; the monitor judges up to now (in AWS it
    leaves late metrics 3 minutes)."""
    return {"Parameters": {"POWERTOOLS_SERVICE_NAME": service, "MONITOR_LAG_SECONDS": "0"}}


def run_stream(published, cloudwatch, tmp_path, name: str, x: np.ndarray) -> dict:
    """The stream through the inference function, then one monitor run; its verdict."""
    service = f"drift-{name}-{uuid.uuid4().hex[:6]}"
    with environ(published["env"]):
        template = Template(parameter_overrides=parse_parameter_overrides(parameters(published)))
        inference = load_function(template, "InferenceFunction", env_vars(service))
        monitor = load_function(template, "MonitorFunction", env_vars(service))
    request = json.loads((EVENTS / "predict-instances.json").read_text())
    forwarder = EmfForwarder(cloudwatch)
    with no_leftovers(), open(tmp_path / f"{name}.log", "ab", buffering=0) as log:
        env = ExecutionEnvironment(inference, log, owner="test-drift", forward=forwarder)
        try:
            for start in range(0, len(x), BATCH):
                body = json.dumps({"instances": x[start : start + BATCH].tolist()})
                result = env.invoke(with_body(request, body))
                assert result.ok and result.payload["statusCode"] == 200, result.payload
        finally:
            env.close()
        env = ExecutionEnvironment(monitor, log, owner="test-drift", forward=forwarder)
        try:
            result = env.invoke(json.loads((EVENTS / "monitor-schedule.json").read_text()))
        finally:
            env.close()
    assert result.ok, result.payload
    (verdict,) = result.payload["versions"]
    verdict["service"] = service
    return verdict


def published_figure(cloudwatch, service: str, metric: str) -> float:
    """What the monitor published for the service (the alarms' series), read from CloudWatch."""
    now = datetime.now(UTC)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "figure",
                "MetricStat": {
                    "Metric": {
                        "Namespace": TEMPLATE.data["Mappings"]["Powertools"]["Metrics"][
                            "Namespace"
                        ],
                        "MetricName": metric,
                        "Dimensions": [{"Name": "service", "Value": service}],
                    },
                    "Period": 3600,
                    "Stat": "Average",
                },
            }
        ],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
    )
    (result,) = answer["MetricDataResults"]
    assert len(result["Values"]) == 1, result
    return result["Values"][0]


@pytest.fixture(scope="module")
def verdicts(published, cloudwatch, tmp_path_factory):
    folder = tmp_path_factory.mktemp("streams")
    return {
        name: run_stream(published, cloudwatch, folder, name, x) for name, x in streams().items()
    }


def test_a_baseline_like_stream_raises_no_alarm(verdicts, cloudwatch):
    verdict = verdicts["baseline-like"]
    print("baseline-like:", json.dumps({k: v for k, v in verdict.items() if k != "detail"}))
    assert verdict["status"] == "judged" and verdict["predictions"] == 500
    for figure, threshold in THRESHOLDS.items():
        assert verdict[figure] < threshold, figure
    assert verdict["psi"] < 0.1  # below even the "moderate shift" line
    assert published_figure(cloudwatch, verdict["service"], "PredictionPSI") == pytest.approx(
        verdict["psi"], abs=1e-6
    )
    assert published_figure(cloudwatch, verdict["service"], "MonitoredPredictions") == 500


def test_a_stream_of_one_class_raises_the_psi_past_its_threshold(verdicts, cloudwatch):
    verdict = verdicts["one-class"]
    print("one-class:", json.dumps({k: v for k, v in verdict.items() if k != "detail"}))
    assert verdict["predictions"] >= MIN_PREDICTIONS
    assert verdict["psi"] > THRESHOLDS["psi"] > verdict["psi_noise"]
    published = published_figure(cloudwatch, verdict["service"], "PredictionPSI")
    assert published == pytest.approx(verdict["psi"], abs=1e-6)
    assert published > THRESHOLDS["psi"]  # what PredictionDriftAlarm compares


def test_an_inverted_stream_shifts_the_inputs_and_the_confidence(verdicts, cloudwatch):
    verdict = verdicts["inverted"]
    print("inverted:", json.dumps({k: v for k, v in verdict.items() if k != "detail"}))
    assert verdict["input_shift"] > THRESHOLDS["input_shift"]
    assert verdict["detail"]["intensity_means"][0] > 200  # ink on white
    service = verdict["service"]
    assert published_figure(cloudwatch, service, "InputShift") > THRESHOLDS["input_shift"]
    assert published_figure(cloudwatch, service, "ConfidenceDrop") == pytest.approx(
        verdict["confidence_drop"], abs=1e-6
    )


def test_make_invoke_runs_the_monitor(published, verdicts, tmp_path):
    """`make invoke FUNCTION=MonitorFunction EVENT=events/monitor-schedule.json`: the CLI, in
    its own process, judges the window the baseline-like stream left (its service)."""
    service = verdicts["baseline-like"]["service"]
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps(env_vars(service)))
    command = [sys.executable, "-m", "local.invoke", "--runner", "local"]
    command += ["--function", "MonitorFunction", "--event", "events/monitor-schedule.json"]
    command += ["--env-vars", str(env_file), "--parameter-overrides", *parameters(published)]
    with no_leftovers():
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=published["env"]
        )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    (verdict,) = answer["versions"]
    assert verdict["status"] == "judged" and verdict["predictions"] == 500
    assert verdict["psi"] == pytest.approx(verdicts["baseline-like"]["psi"])
    assert '"message":"drift"' in done.stderr  # its log, on stderr as sam local prints it
