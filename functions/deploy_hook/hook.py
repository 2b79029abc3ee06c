"""CodeDeploy's pre-traffic hook: invoke the new version of the inference function with a real
health event and a real prediction event before any traffic reaches it, and report.

CodeDeploy invokes this with {"DeploymentId", "LifecycleEventHookExecutionId"}; it must answer
with PutLifecycleEventHookExecutionStatus (Succeeded or Failed) or the deployment fails at its
timeout. TARGET_FUNCTION_VERSION_ARN is the version being deployed (template.yaml).

What the new version must do (check_version, a pure function over an `invoke` callable):
- GET /health/deep (the deep health: it loads the model; the open GET /health only says what
  an environment holds already) answers 200 with the served model and status ok (not
  degraded: the new version refuses nothing the registry names), or, while nothing is
  published yet (no
  pointer in the registry: a first deploy), 503 MODEL_UNAVAILABLE, which is not a failure;
  a 503 "still loading" is retried within a budget (the version's first environment is cold).
- Once a model is published, the version the health named answers a prediction through the TF
  Serving route: one instance of each input of its default signature, in the input's shape
  and dtype, at the low end of its value range (or 0), read from the metadata route. Any
  model (an image classifier or a generic one, mlcore.generic) is checked the same way.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

# (status, parsed JSON body) for an API Gateway proxy event
Invoke = Callable[[dict[str, Any]], tuple[int, Any]]

LOADING_BUDGET_SECONDS = 60.0  # how long a cold new version may answer "still loading"
RETRY_SECONDS = 2.0
# The deep health: invoked directly (lambda:InvokeFunction), so the API's auth is not in the way.
HEALTH_PATH = "/health/deep"


def proxy_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A REST API proxy event as API Gateway sends it (what the function's routes read)."""
    text = None if body is None else json.dumps(body)
    headers = {"Content-Type": "application/json", "User-Agent": "CodeDeployHook"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "pre-traffic",
            "requestId": "codedeploy-pre-traffic",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "CodeDeployHook"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def example_inputs(metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(the default signature, one instance of each of its inputs) from a TF Serving
    GetModelMetadataResponse: any-size dimensions 1, each value the low end of the input's
    value range (this API's expected_inputs), else 0 (false for a DT_BOOL input)."""
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
    ranges = metadata["metadata"].get("expected_inputs", {}).get(key, {})
    inputs = {}
    for name, tensor in signatures[key]["inputs"].items():
        dims = [max(1, int(d["size"])) for d in tensor["tensor_shape"]["dim"]]
        value_range = (ranges.get(name) or {}).get("value_range")
        value = False if tensor["dtype"] == "DT_BOOL" else value_range[0] if value_range else 0
        inputs[name] = filled(dims, value)
    return key, inputs


def filled(shape: list[int], value: Any) -> Any:
    if not shape:
        return value
    return [filled(shape[1:], value) for _ in range(shape[0])]


def check_version(
    invoke: Invoke,
    model_published: bool,
    budget_seconds: float = LOADING_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """What is wrong with the version behind `invoke` (nothing: an empty list)."""
    give_up = clock() + budget_seconds
    while True:
        status, body = invoke(proxy_event("GET", HEALTH_PATH))
        code = body.get("code") if isinstance(body, dict) else None
        if status == 200:
            break
        if status == 503 and code == "MODEL_UNAVAILABLE":
            if not model_published:
                return []  # a first deploy: nothing to serve yet, and it says so
            if clock() < give_up:
                sleep(RETRY_SECONDS)
                continue
        return [f"GET {HEALTH_PATH} answered {status}: {body}"]
    if body.get("status") == "degraded":  # the registry's report (docs/registry.md)
        return [f"GET {HEALTH_PATH} says degraded: {body.get('registry')}"]
    model = body.get("model") or {}
    name, version = model.get("name"), model.get("version")
    if not name or not isinstance(version, int):
        return [f"GET {HEALTH_PATH} named no model: {body}"]
    path = f"/v1/models/{name}/versions/{version}"
    status, metadata = invoke(proxy_event("GET", f"{path}/metadata"))
    if status != 200:
        return [f"GET {path}/metadata answered {status}: {metadata}"]
    try:
        signature, inputs = example_inputs(metadata)
    except (KeyError, TypeError, ValueError, StopIteration) as exc:
        return [f"the metadata names no inputs ({type(exc).__name__}: {exc})"]
    request = {"signature_name": signature, "inputs": inputs}
    status, answer = invoke(proxy_event("POST", f"{path}:predict", request))
    if status != 200:
        return [f"POST {path}:predict answered {status}: {answer}"]
    if not isinstance(answer, dict) or "outputs" not in answer:
        return [f"POST {path}:predict answered no outputs: {answer}"]
    return []


def parse_invoke_response(response: dict[str, Any]) -> tuple[int, Any]:
    """A Lambda Invoke response of the inference function -> (HTTP status, JSON body)."""
    if response.get("FunctionError"):
        return 500, {"error": response["Payload"].read().decode(errors="replace")}
    payload = json.loads(response["Payload"].read())
    body = payload.get("body") or "null"
    if payload.get("isBase64Encoded"):
        import base64

        body = base64.b64decode(body).decode()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {"error": body[:500]}
    return int(payload.get("statusCode", 500)), parsed


def pointer_key(environ: dict[str, str]) -> str:
    prefix = environ.get("MODEL_PREFIX", "").strip("/")
    return "/".join(p for p in (prefix, environ["MODEL_NAME"], "latest.json") if p)


def model_published(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    import boto3

    environ = dict(os.environ)
    target = environ["TARGET_FUNCTION_VERSION_ARN"]
    lambda_client = boto3.client("lambda")
    try:
        published = model_published(
            boto3.client("s3"), environ["MODEL_BUCKET"], pointer_key(environ)
        )
        problems = check_version(
            lambda e: parse_invoke_response(
                lambda_client.invoke(FunctionName=target, Payload=json.dumps(e).encode())
            ),
            published,
        )
    except Exception as exc:  # a failed check must still be reported, as Failed
        problems = [f"the check itself failed: {type(exc).__name__}: {exc}"]
    status = "Failed" if problems else "Succeeded"
    print(json.dumps({"target": target, "status": status, "problems": problems}))
    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return {"status": status}
