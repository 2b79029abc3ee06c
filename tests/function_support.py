"""Helpers for the inference function's tests (unit and integration).

The function's modules import as top-level modules (pyproject: pythonpath functions/inference).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.bootstrap import LambdaContext
from tests.emf_spec import valid_records

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"
# the first model, published with manifest schema 1 (grey (N, 28, 28), images resized)
SCHEMA1_DIR = ROOT / "tests" / "fixtures" / "mnist-schema1"
EVENTS_DIR = ROOT / "events"
METRICS_NAMESPACE = "ServerlessML-Test"
SERVICE_NAME = "inference-test"


def template_environment(**parameter_overrides: str) -> dict[str, str]:
    """The inference function's environment as template.yaml gives it (its Parameters'
    defaults, or these overrides), resolved as `sam local invoke` resolves it: the function's
    settings have no defaults of their own. A copy: the resolution is cached per overrides."""
    overrides = tuple(sorted(parameter_overrides.items()))
    return dict(_template_environment("InferenceFunction", overrides))


def monitor_environment(**parameter_overrides: str) -> dict[str, str]:
    """The same for the drift monitor (MonitorFunction)."""
    overrides = tuple(sorted(parameter_overrides.items()))
    return dict(_template_environment("MonitorFunction", overrides))


@functools.cache
def _template_environment(function: str, overrides: tuple[tuple[str, str], ...]) -> dict[str, str]:
    from local.template import Template

    template = Template(
        parameter_overrides={"BucketName": "serverless-ml-models", **dict(overrides)}
    )
    return template.environment(template.function(function), shell_env={})


@contextlib.contextmanager
def function_configured(monkeypatch, cache_dir: Path, **parameters: str):
    """The real handler configured as the template configures it (these parameter overrides,
    e.g. BucketName=...), keeping the test's own AWS_* settings (the loopback S3); the real
    app.get_store builds its store inside, and it is forgotten after."""
    import app

    reset_powertools(monkeypatch)
    for name, value in template_environment(**parameters).items():
        if not name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache_dir))
    app.get_store.cache_clear()
    try:
        yield
    finally:
        app.get_store.cache_clear()


def expected_events() -> dict[str, dict[str, Any]]:
    return json.loads((EVENTS_DIR / "expected.json").read_text())


def answered_labels(body: dict[str, Any], labels: list[str]) -> list[str]:
    """The labels an answer gives, whichever route answered: /predict's predictions, TF
    Serving's rows of probabilities (row or columnar), the Open Inference Protocol's tensor."""
    import numpy as np

    if "model_name" in body:  # v2: one flat output tensor with its shape
        (tensor,) = body["outputs"]
        rows = np.reshape(tensor["data"], tensor["shape"])
    else:
        rows = body.get("predictions", body.get("outputs"))
        if rows and isinstance(rows[0], dict):
            return [row["label"] for row in rows]
    return [labels[i] for i in np.argmax(rows, axis=1)]


def with_body(event: dict[str, Any], body: str | None, base64_body: bool = False) -> dict[str, Any]:
    """A copy of `event` carrying another body (plain text unless base64_body)."""
    event = json.loads(json.dumps(event))
    event["isBase64Encoded"] = bool(body is not None and base64_body)
    event["body"] = base64.b64encode(body.encode()).decode() if event["isBase64Encoded"] else body
    return event


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def invoke(event: dict[str, Any], context: LambdaContext | None = None) -> HttpResult:
    """The event through app.lambda_handler, the whole decorator stack included."""
    import app

    response = app.lambda_handler(
        event, context or LambdaContext(function_name="InferenceFunction")
    )
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = dict(response.get("headers") or {})  # REST API responses use multiValueHeaders
    headers.update({k: ", ".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()})
    if headers.get("Content-Type", "").startswith("text/"):  # the page at GET /
        return HttpResult(response["statusCode"], headers, body)
    return HttpResult(response["statusCode"], headers, json.loads(body) if body else None)


def emf_records(stdout: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents printed (the function's own and Powertools'), each held to
    the EMF specification (tests/emf_spec.py): a test that reads metrics also checks them."""
    return valid_records(stdout)


def metric_values(stdout: str, name: str, **dimensions: str) -> list[float]:
    """Every value of metric `name` in the EMF output whose dimensions include `dimensions`."""
    values: list[float] = []
    for record in emf_records(stdout):
        names = {m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        if name in names and all(record.get(k) == v for k, v in dimensions.items()):
            values.extend(record[name] if isinstance(record[name], list) else [record[name]])
    return values


def log_records(stdout: str) -> list[dict[str, Any]]:
    """The Powertools JSON log lines (not metrics)."""
    records = []
    for line in stdout.splitlines():
        if line.startswith("{") and not line.startswith('{"_aws"'):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return records


class CurrentStdout:
    """A stream that writes to whatever sys.stdout is now (pytest's capsys swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def reset_powertools(monkeypatch) -> None:
    """Fresh Powertools global state: env, metrics, cold start flags (call before each test)."""
    import aws_lambda_powertools.logging.logger as logger_module
    import aws_lambda_powertools.tracing.tracer as tracer_module
    from aws_lambda_powertools.metrics.provider import cold_start

    import app

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    # the template's tracing mode, chosen again at the next request
    monkeypatch.setenv("TRACING_MODE", template_environment()["TRACING_MODE"])
    app.get_tracing.cache_clear()
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
    # Metrics() read the environment when app was imported, perhaps by another test module.
    monkeypatch.setattr(app.metrics, "namespace", METRICS_NAMESPACE)
    monkeypatch.setattr(app.metrics, "service", SERVICE_NAME)
    # the Logger's handler holds the stdout of import time: follow the test's instead
    monkeypatch.setattr(app.logger.registered_handler, "stream", CurrentStdout())
    app.metrics.clear_metrics()
    app.metrics.clear_default_dimensions()
    cold_start.is_cold_start = True
    logger_module.is_cold_start = True
    tracer_module.is_cold_start = True


class FakeBody(io.BytesIO):
    """A streaming body like botocore's StreamingBody (read(n), close())."""


class FakeS3:
    """An in-memory S3: get_object only, counting reads per key; `fail` makes every call raise."""

    def __init__(self, objects: dict[str, bytes] | None = None):
        self.objects: dict[str, bytes] = dict(objects or {})
        self.reads: dict[str, int] = {}
        self.fail: Exception | None = None

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        self.reads[Key] = self.reads.get(Key, 0) + 1
        if self.fail is not None:
            raise self.fail
        if Key not in self.objects:
            raise KeyError(f"NoSuchKey: {Key}")
        return {"Body": FakeBody(self.objects[Key])}

    def publish(
        self,
        manifest: dict[str, Any],
        model: bytes,
        prefix: str = "models",
        name: str = "mnist",
        pointer: bool = True,
    ) -> None:
        """Store one version under NAME as the training job's publisher lays it out."""
        base = f"{prefix}/{name}/{manifest['version']}"
        self.objects[f"{base}/model.tflite"] = model
        self.objects[f"{base}/manifest.json"] = json.dumps(manifest).encode()
        if pointer:
            self.objects[f"{prefix}/{name}/latest.json"] = json.dumps(
                {
                    "name": name,
                    "version": manifest["version"],
                    "manifest_key": f"{base}/manifest.json",
                    "updated_at": "2026-11-28T22:00:00Z",
                }
            ).encode()


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fixture_manifest() -> dict[str, Any]:
    return json.loads((FIXTURE_DIR / "manifest.json").read_text())


def schema1_manifest() -> dict[str, Any]:
    return json.loads((SCHEMA1_DIR / "manifest.json").read_text())


def fixture_model() -> bytes:
    return (FIXTURE_DIR / "model.tflite").read_bytes()


GENERIC_DIR = ROOT / "tests" / "fixtures" / "generic"  # make_models.py says what each is
GENERIC_VERSION = 1796500000


def generic_model(
    file: str, name: str, version: int = GENERIC_VERSION, labels: bool = False
) -> tuple[dict[str, Any], bytes]:
    """(manifest, model bytes) of a generic test model, the manifest made by the publisher's
    own reader (training.tflite_model: LiteRT and numpy, no TensorFlow)."""
    from training.tflite_model import manifest_for, read_labels

    path = GENERIC_DIR / file
    content = path.read_bytes()
    names = read_labels(GENERIC_DIR / "labels.txt") if labels else None
    return manifest_for(content, path, name, version, 1796500000.0, names), content


def new_version(
    manifest: dict[str, Any], version: int, model: bytes | None = None
) -> dict[str, Any]:
    """The same model republished as `version` (manifest size and sha256 of `model`, if given)."""
    import hashlib

    manifest = json.loads(json.dumps(manifest))
    manifest["version"] = version
    if model is not None:
        manifest["files"]["model.tflite"] = {
            "sha256": hashlib.sha256(model).hexdigest(),
            "size": len(model),
        }
    return manifest
