"""AWS Lambda entry point of the drift monitor: an EventBridge schedule runs it once every
MONITOR_WINDOW_MINUTES (template.yaml, MonitorFunction).

Each run, for the version being served (the registry pointer's, or the pinned MODEL_VERSION):
1. the window: MONITOR_WINDOW_MINUTES ending at the first whole minute after the run's time
   less MONITOR_LAG_SECONDS (late metrics have arrived by then; whole minutes, so consecutive
   runs tile the time line and no prediction is judged twice);
2. the version's manifest (mlcore.registry's keys) and the ``baseline`` in it (mlcore.stats);
3. the window's metrics of that version (window.py, GetMetricData);
4. the drift figures (drift.py), published as metrics (EMF, like every metric of this stack)
   per service and per service and model version: ``MonitoredPredictions`` always,
   ``PredictionPSI``, ``ConfidenceDrop`` and ``InputShift`` when the window holds at least
   MONITOR_MIN_PREDICTIONS predictions and the manifest has a baseline. The alarms watch them.
   A generic model (mlcore.generic) has none of these figures: its verdict says so, and
   nothing is published for it.

Any event starts a run (the schedule's, or one sent by hand: ``make invoke
FUNCTION=MonitorFunction EVENT=events/monitor-schedule.json``); the answer is a summary of what
was judged. A registry or metrics read that fails raises (MonitorErrorsAlarm).
"""

from __future__ import annotations

import functools
import json
import math
import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import drift
import window
from mlcore import generic
from mlcore.images import InputSpec
from mlcore.registry import CANARY, STABLE, Pointer
from monitor_settings import MonitorSettings, load_settings

logger = Logger()  # service name, level: POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL
tracer = Tracer()
metrics = Metrics()  # namespace, service: the inference function's (the same stack)

GENERIC = "a generic model (mlcore.generic): drift figures are an image classifier's"
CLIENT_CONNECT_TIMEOUT = 2
CLIENT_READ_TIMEOUT = 5
CLIENT_MAX_ATTEMPTS = 3


@functools.cache
def get_settings() -> MonitorSettings:
    return load_settings()


@functools.cache
def get_clients() -> tuple[Any, Any]:
    """(s3, cloudwatch), boto3 from the Lambda runtime with bounded timeouts; the endpoints come
    from the standard AWS settings (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_CLOUDWATCH locally).
    Tests replace this function."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CLIENT_CONNECT_TIMEOUT,
        read_timeout=CLIENT_READ_TIMEOUT,
        retries={"mode": "standard", "total_max_attempts": CLIENT_MAX_ATTEMPTS},
    )
    return boto3.client("s3", config=config), boto3.client("cloudwatch", config=config)


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return json.loads(body.read())
    finally:
        body.close()


def served_versions(s3: Any, settings: MonitorSettings) -> list[tuple[int, str]]:
    """The versions being served, each with its role: the pinned one (stable), or the one
    latest.json names (stable) and its canary, if one runs (canary)."""
    if settings.model_version != "latest":
        return [(int(settings.model_version), STABLE)]
    pointer = Pointer.parse(_read_json(s3, settings.bucket, settings.registry.pointer_key))
    canary = pointer.canary
    return [(pointer.version, STABLE)] + ([(canary.version, CANARY)] if canary else [])


def window_bounds(now: float, settings: MonitorSettings) -> tuple[datetime, datetime]:
    """[start, end): the window that ends at the first whole minute after now - lag."""
    end = math.ceil((now - settings.lag_seconds) / 60) * 60
    start = end - settings.window_minutes * 60
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def judge(
    version: int, manifest: dict[str, Any], observed: drift.Observed, settings: MonitorSettings
) -> dict[str, Any]:
    """One version's verdict: the figures, or why there are none."""
    verdict: dict[str, Any] = {"version": version, "predictions": observed.predictions}
    baseline = manifest.get("baseline") or {}
    if not baseline:
        return {**verdict, "status": "no baseline in the manifest (trained before baselines)"}
    if observed.predictions < settings.min_predictions:
        return {
            **verdict,
            "status": f"too few predictions (fewer than {settings.min_predictions}) to judge",
        }
    spec = InputSpec.from_manifest(manifest)
    figures = drift.measure(baseline, observed, (spec.low, spec.high))
    return {
        **verdict,
        "status": "judged",
        "psi": round(figures.psi, 6),
        "psi_noise": round(figures.psi_noise, 6),
        "confidence_drop": round(figures.confidence_drop, 6),
        "input_shift": round(figures.input_shift, 6),
        "detail": figures.detail,
    }


def publish(verdict: dict[str, Any]) -> None:
    """The verdict's figures as metrics, per service, per service and model version, and per
    service and role (stable, canary)."""
    metrics.add_metric(
        name="MonitoredPredictions", unit=MetricUnit.Count, value=verdict["predictions"]
    )
    if verdict["status"] == "judged":
        for name, key in (
            ("PredictionPSI", "psi"),
            ("ConfidenceDrop", "confidence_drop"),
            ("InputShift", "input_shift"),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=verdict[key])
    metrics.add_dimensions(service=metrics.service, model_version=str(verdict["version"]))
    metrics.add_dimensions(service=metrics.service, role=verdict["role"])  # per-role alarms
    metrics.flush_metrics()


def run(now: float | None = None) -> dict[str, Any]:
    settings = get_settings()
    s3, cloudwatch = get_clients()
    start, end = window_bounds(time.time() if now is None else now, settings)
    period = settings.window_minutes * 60
    verdicts = []
    for version, role in served_versions(s3, settings):
        manifest = _read_json(s3, settings.bucket, settings.registry.manifest_key(version))
        if generic.kind_of(manifest) == generic.KIND:
            # the figures (confidence, labels, input intensity) are an image classifier's
            verdict = {"role": role, "version": version, "status": GENERIC}
            logger.info("drift", extra={"verdict": verdict})
            verdicts.append(verdict)
            continue
        labels = [str(label) for label in manifest["labels"]]
        channels = InputSpec.from_manifest(manifest).channels
        wanted = window.series(labels, channels)
        metric_queries = window.queries(metrics.namespace, metrics.service, version, wanted, period)
        totals = window.read_totals(cloudwatch, metric_queries, start, end)
        verdict = judge(version, manifest, window.observed(totals, labels, channels), settings)
        verdict = {"role": role, **verdict}
        logger.info("drift", extra={"verdict": verdict})
        publish(verdict)
        verdicts.append(verdict)
    return {
        "model": settings.model_name,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "versions": verdicts,
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run()
