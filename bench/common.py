"""Shared by the bench parent and its child processes: paths, statistics, events, Lambda context.

Standard library only (plus numpy where noted), so the children import nothing they would not
otherwise import.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "functions" / "inference"
EVENTS_DIR = ROOT / "events"
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"
PYTHON = sys.executable

BUCKET = "bench-models"
PREFIX = "models"
NAME = "mnist"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# What template.yaml's Globals give the function (the Powertools names live in the template).
FUNCTION_ENV = {
    "MODEL_BUCKET": BUCKET,
    "MODEL_PREFIX": PREFIX,
    "MODEL_NAME": NAME,
    "MODEL_VERSION": "latest",
    "POWERTOOLS_SERVICE_NAME": "inference",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessML",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_LAMBDA_FUNCTION_NAME": "InferenceFunction",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
}


def lambda_environment(daemon_port: int) -> dict[str, str]:
    """What the Lambda runtime sets in every execution environment (local/function.py sets the
    same): with LAMBDA_TASK_ROOT, Powertools' Tracer is on and the X-Ray SDK takes its Lambda
    path; `Tracing: Active` samples the request (_X_AMZN_TRACE_ID) and segments go over UDP
    to the daemon, here a loopback socket of ours that nobody reads."""
    return {
        "LAMBDA_TASK_ROOT": str(FUNCTION_DIR),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_X_AMZN_TRACE_ID": (
            "Root=1-6750e8a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
        ),
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon_port}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def now_ns() -> int:
    """CLOCK_MONOTONIC: the same clock in every process of this machine."""
    return time.monotonic_ns()


# -- statistics ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(values_ns: list[int] | list[float], scale: float = 1e-6) -> dict[str, float]:
    values = [v * scale for v in values_ns]
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 4),
        "p90_ms": round(percentile(values, 90), 4),
        "p99_ms": round(percentile(values, 99), 4),
        "min_ms": round(min(values), 4) if values else float("nan"),
        "mean_ms": round(sum(values) / len(values), 4) if values else float("nan"),
    }


def ratio(numerator: float, denominator: float, digits: int = 3) -> float:
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return float("nan")
    return round(numerator / denominator, digits)


# -- events and context -------------------------------------------------------------------

_BUILTIN_EVENT = {
    # The shape `sam local generate-event apigateway aws-proxy --method POST --path predict` prints.
    "body": "",
    "resource": "/predict",
    "path": "/predict",
    "httpMethod": "POST",
    "isBase64Encoded": False,
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "headers": {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "1234567890.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "bench",
        "X-Amzn-Trace-Id": "Root=1-5e1b4a3c-0123456789abcdef01234567",
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    },
    "multiValueHeaders": {"Content-Type": ["application/json"]},
    "requestContext": {
        "accountId": "123456789012",
        "resourceId": "123456",
        "stage": "Prod",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "requestTime": "28/Nov/2026:22:00:00 +0000",
        "requestTimeEpoch": 1795903200000,
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
        "path": "/Prod/predict",
        "resourcePath": "/predict",
        "httpMethod": "POST",
        "apiId": "1234567890",
        "protocol": "HTTP/1.1",
    },
}


def base_event() -> tuple[dict, str]:
    """The project's own POST /predict event (events/predict-instances.json) when it exists."""
    path = EVENTS_DIR / "predict-instances.json"
    if path.is_file():
        try:
            event = json.loads(path.read_text())
            if isinstance(event, dict) and event.get("httpMethod") == "POST":
                return event, str(path.relative_to(ROOT))
        except ValueError:
            pass
    return copy.deepcopy(_BUILTIN_EVENT), "built-in (events/predict-instances.json absent)"


def predict_event(instances: list, base: dict | None = None) -> dict:
    """The same API Gateway proxy event for every variant: {"instances": [...]} as the body,
    base64-encoded if (and only if) the base event is."""
    event = copy.deepcopy(base or _BUILTIN_EVENT)
    body = json.dumps({"instances": instances}, separators=(",", ":"))
    if event.get("isBase64Encoded"):
        event["body"] = base64.b64encode(body.encode()).decode()
    else:
        event["body"] = body
    return event


class LambdaContext:
    """The fields of awslambdaric's context object that handlers and Powertools read."""

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "2026/11/28/[$LATEST]bench"
        self.client_context = None
        self.identity = None
        self._deadline = time.time() + 30

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.time()) * 1000), 0)


def answer_labels(response: dict) -> list[str]:
    """The predicted labels in a response of any variant (all answer {"predictions": [...]})."""
    body = json.loads(response["body"])
    return [str(p["label"]) for p in body["predictions"]]


def write_line(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]
