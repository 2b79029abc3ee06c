"""CodeDeploy's pre-traffic hook: invoke the new version of the inference function with a real
health event and a real prediction event before any traffic reaches it, and report.

CodeDeploy invokes this with {"DeploymentId", "LifecycleEventHookExecutionId"}; it must answer
with PutLifecycleEventHookExecutionStatus (Succeeded or Failed) or the deployment fails at its
timeout. TARGET_FUNCTION_VERSION_ARN is the version being deployed (template.yaml).

What the new version must do (check_version, a pure function over an `invoke` callable):
- GET /health answers 200 with the served model, or, while nothing is published yet (no
  pointer in the registry: a first deploy), 503 MODEL_UNAVAILABLE, which is not a failure;
  a 503 "still loading" is retried within a budget (the version's first environment is cold).
- Once a model is published, POST /predict with one input of the model's shape (read from the
  TF Serving metadata route) answers 200 with one prediction by the model /health named.
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


def input_shape(metadata: dict[str, Any]) -> list[int]:
    """One instance's shape from a TF Serving GetModelMetadataResponse (batch dim dropped)."""
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    (signature,) = signatures.values()
    (tensor,) = signature["inputs"].values()
    dims = [int(d["size"]) for d in tensor["tensor_shape"]["dim"]]
    return dims[1:]


def zeros(shape: list[int]) -> Any:
    if not shape:
        return 0
    return [zeros(shape[1:]) for _ in range(shape[0])]


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
        status, body = invoke(proxy_event("GET", "/health"))
        code = body.get("code") if isinstance(body, dict) else None
        if status == 200:
            break
        if status == 503 and code == "MODEL_UNAVAILABLE":
            if not model_published:
                return []  # a first deploy: nothing to serve yet, and it says so
            if clock() < give_up:
                sleep(RETRY_SECONDS)
                continue
        return [f"GET /health answered {status}: {body}"]
    model = body.get("model") or {}
    name, version = model.get("name"), model.get("version")
    if not name or not isinstance(version, int):
        return [f"GET /health named no model: {body}"]
    status, metadata = invoke(proxy_event("GET", f"/v1/models/{name}/metadata"))
    if status != 200:
        return [f"GET /v1/models/{name}/metadata answered {status}: {metadata}"]
    try:
        shape = input_shape(metadata)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the metadata has no input shape ({type(exc).__name__}: {exc})"]
    status, answer = invoke(proxy_event("POST", "/predict", {"instances": [zeros(shape)]}))
    if status != 200:
        return [f"POST /predict answered {status}: {answer}"]
    problems = []
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != 1:
        problems.append(f"POST /predict did not answer one prediction: {answer}")
    answered = (answer.get("model") or {}) if isinstance(answer, dict) else {}
    if answered.get("name") != name:
        problems.append(f"POST /predict was answered by {answered}, /health named {model}")
    return problems


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
