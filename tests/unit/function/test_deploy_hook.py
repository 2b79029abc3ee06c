"""The CodeDeploy pre-traffic hook (functions/deploy_hook) against the real inference handler:
the events it sends are real proxy events through the whole decorator stack."""

from __future__ import annotations

import io
import json

import pytest

import hook
from tests.function_support import FakeClock, FakeS3, generic_model, invoke


def through_handler(event):
    result = invoke(event)
    return result.status, result.body


def test_a_version_serving_the_published_model_passes(serve, fake_s3):
    serve(fake_s3)
    assert hook.check_version(through_handler, model_published=True) == []


def test_an_empty_registry_503_is_not_a_failure_on_a_first_deploy(serve):
    serve(FakeS3())
    assert hook.check_version(through_handler, model_published=False) == []


def test_a_version_that_cannot_serve_a_published_model_fails_after_its_budget(serve):
    serve(FakeS3())  # the version reads an empty bucket while the pointer exists
    clock = FakeClock()
    waits = []
    problems = hook.check_version(
        through_handler,
        model_published=True,
        budget_seconds=10,
        clock=clock,
        sleep=lambda s: (waits.append(s), clock.advance(s)),
    )
    assert len(problems) == 1 and "GET /health/deep answered 503" in problems[0]
    assert sum(waits) >= 10


def test_a_version_that_refuses_what_the_pointer_names_fails(serve, fake_s3, manifest):
    """It serves (the previous good version) but says degraded: a new version of the code
    that refuses the registry's documents must not take traffic."""
    from tests.function_support import fixture_model, new_version

    served = manifest_version()
    serve(fake_s3)
    assert hook.check_version(through_handler, model_published=True) == []
    broken = new_version(manifest, served + 1)
    broken["labels"] = []
    fake_s3.publish(broken, fixture_model())
    import app

    app.get_store()._checked_at = float("-inf")  # a refresh due now
    through_handler(hook.proxy_event("GET", "/health/deep"))  # starts the refresh
    app.get_store().wait(10)
    (problem,) = hook.check_version(through_handler, model_published=True)
    assert problem.startswith("GET /health/deep says degraded") and "$.labels" in problem


def test_a_version_whose_predictions_fail_fails(serve, fake_s3):
    serve(fake_s3)

    def broken_predict(event):
        if event["path"].endswith(":predict"):
            return 500, {"error": "boom", "code": "INTERNAL_ERROR"}
        return through_handler(event)

    (problem,) = hook.check_version(broken_predict, model_published=True)
    assert problem.startswith(f"POST /v1/models/mnist/versions/{manifest_version()}:predict")
    assert "answered 500" in problem


def manifest_version() -> int:
    from tests.function_support import fixture_manifest

    return fixture_manifest()["version"]


def shape_of(value) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0]
    return shape


def recorded_predictions(s3: FakeS3, serve) -> list[dict]:
    serve(s3)
    sent = []

    def recording(event):
        sent.append(event)
        return through_handler(event)

    assert hook.check_version(recording, model_published=True) == []
    return [json.loads(e["body"]) for e in sent if e["httpMethod"] == "POST"]


def test_the_prediction_has_the_models_input_shape(serve, fake_s3, manifest):
    ((body,),) = [recorded_predictions(fake_s3, serve)]
    assert body["signature_name"] == "serving_default"
    assert shape_of(body["inputs"]["image"]) == [1, *manifest["input"]["shape"][1:]]


@pytest.mark.parametrize("file", ["pair-int8.tflite", "mixed.tflite", "legacy.tflite"])
def test_any_model_is_checked_by_its_own_inputs(serve, file):
    """A generic model: every input of its default signature, in its shape and dtype (an
    int8 input at the low end of its value range), answered 200 by the version deployed."""
    manifest, model = generic_model(file, "mnist")
    s3 = FakeS3()
    s3.publish(manifest, model)
    (body,) = recorded_predictions(s3, serve)
    signature = manifest["signatures"][manifest["default_signature"]]
    assert sorted(body["inputs"]) == sorted(signature["inputs"])
    for name, tensor in signature["inputs"].items():
        assert shape_of(body["inputs"][name]) == [max(1, d) for d in tensor["shape"]]


class Payload(io.BytesIO):
    pass


def test_invoke_responses_are_read_as_api_answers():
    ok = {"statusCode": 200, "body": json.dumps({"status": "ok"})}
    assert hook.parse_invoke_response({"Payload": Payload(json.dumps(ok).encode())}) == (
        200,
        {"status": "ok"},
    )
    crashed = {"FunctionError": "Unhandled", "Payload": Payload(b'{"errorMessage": "x"}')}
    assert hook.parse_invoke_response(crashed)[0] == 500


def test_the_handler_reports_its_verdict_to_codedeploy(monkeypatch, serve, fake_s3):
    status = "Succeeded"
    serve(fake_s3)
    reported = []

    class Lambda:
        def invoke(self, FunctionName, Payload):  # noqa: N803 (boto3's names)
            assert FunctionName.endswith(":7")
            response = invoke(json.loads(Payload))
            body = json.dumps(response.body)
            return {
                "Payload": io.BytesIO(
                    json.dumps({"statusCode": response.status, "body": body}).encode()
                )
            }

    class S3:
        class exceptions:  # noqa: N801 (boto3's shape)
            ClientError = Exception

        def head_object(self, Bucket, Key):  # noqa: N803
            assert Key == "models/mnist/latest.json"
            return {}

    class CodeDeploy:
        def put_lifecycle_event_hook_execution_status(self, **kwargs):
            reported.append(kwargs)

    clients = {"lambda": Lambda(), "s3": S3(), "codedeploy": CodeDeploy()}
    import boto3

    monkeypatch.setattr(boto3, "client", lambda name, **_: clients[name])
    monkeypatch.setenv("TARGET_FUNCTION_VERSION_ARN", "arn:aws:lambda:r:1:function:f:7")
    monkeypatch.setenv("MODEL_BUCKET", "bucket")
    monkeypatch.setenv("MODEL_PREFIX", "models")
    monkeypatch.setenv("MODEL_NAME", "mnist")
    event = {"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h-1"}
    assert hook.lambda_handler(event, None) == {"status": status}
    assert reported == [
        {"deploymentId": "d-1", "lifecycleEventHookExecutionId": "h-1", "status": status}
    ]


def test_a_failing_check_is_reported_as_failed(monkeypatch):
    reported = []

    class CodeDeploy:
        def put_lifecycle_event_hook_execution_status(self, **kwargs):
            reported.append(kwargs["status"])

    class Unreachable:
        def __getattr__(self, name):
            raise ConnectionError("no route")

    import boto3

    monkeypatch.setattr(
        boto3, "client", lambda name, **_: CodeDeploy() if name == "codedeploy" else Unreachable()
    )
    monkeypatch.setenv("TARGET_FUNCTION_VERSION_ARN", "arn")
    monkeypatch.setenv("MODEL_BUCKET", "bucket")
    monkeypatch.setenv("MODEL_NAME", "mnist")
    hook.lambda_handler({"DeploymentId": "d", "LifecycleEventHookExecutionId": "h"}, None)
    assert reported == ["Failed"]
