"""app.lambda_handler driven by the API Gateway events in events/, with the store replaced by one
over an in-memory registry holding the fixture model."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from local.bootstrap import LambdaContext
from tests.function_support import (
    ROOT,
    FakeS3,
    answered_labels,
    emf_records,
    expected_events,
    fixture_manifest,
    invoke,
    log_records,
    metric_values,
    new_version,
    reset_powertools,
    with_body,
)

EXPECTED = expected_events()
V1 = fixture_manifest()["version"]


@pytest.fixture
def served(serve, fake_s3):
    return serve(fake_s3)


def test_every_event_file_has_an_expectation():
    files = {p for p in os.listdir(ROOT / "events") if p.endswith(".json")} - {
        "expected.json",
        "env.json",
    }
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_event_gets_its_expected_answer(served, load_event, name):
    expected = EXPECTED[name]
    result = invoke(load_event(name))
    assert result.status == expected["status"], result.body
    assert result.headers["Content-Type"] == "application/json"
    if "code" in expected:
        assert set(result.body) == {"error", "code"}
        assert result.body["code"] == expected["code"]
        assert len(result.body["error"]) > 20 and "Traceback" not in result.body["error"]
    if "labels" in expected:
        labels = [str(i) for i in range(10)]
        assert answered_labels(result.body, labels) == expected["labels"]


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("http-")))
def test_an_http_api_event_is_answered_in_payload_format_2(served, load_event, name):
    """An HTTP API reads `headers` (one string each) from a 2.0 answer, not multiValueHeaders,
    which format 2.0 does not have: without it the answer would lose its Content-Type."""
    import app

    event = load_event(name)
    assert event["version"] == "2.0"
    response = app.lambda_handler(event, LambdaContext(function_name="InferenceFunction"))
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["headers"]["Content-Type"] == "application/json"
    assert all(isinstance(v, str) for v in response["headers"].values())
    if response["statusCode"] == 405:
        assert response["headers"]["Allow"] == "POST"


def test_the_predict_answer(served, load_event):
    body = invoke(load_event("predict-instances.json")).body
    (prediction,) = body["predictions"]
    assert prediction["label"] == "7" and prediction["class_id"] == 7
    assert prediction["confidence"] == max(prediction["probabilities"]) > 0.5
    assert len(prediction["probabilities"]) == 10
    assert prediction["top"][0] == {"label": "7", "confidence": prediction["confidence"]}
    confidences = [t["confidence"] for t in prediction["top"]]
    assert len(confidences) == 3 and confidences == sorted(prediction["probabilities"])[:-4:-1]
    assert body["model"] == {"name": "mnist", "version": V1, "role": "stable"}


def test_base64_and_plain_bodies_both_work(served, load_event):
    event = load_event("predict-instances.json")
    assert event["isBase64Encoded"] is True  # as sam local generate-event makes it
    plain = with_body(event, json.dumps({"instances": [[[0] * 28] * 28]}))
    assert plain["isBase64Encoded"] is False
    assert invoke(plain).status == 200
    assert load_event("tfserving-predict.json")["isBase64Encoded"] is False
    assert invoke(load_event("tfserving-predict.json")).status == 200


def test_bad_base64_body_is_400(served, load_event):
    event = load_event("predict-instances.json")
    event["body"] = "%%% not base64 %%%"
    assert invoke(event).code == "INVALID_JSON"


def test_a_base64_body_is_strict_and_sized_before_it_is_decoded(served, load_event):
    """Issue 25: junk inside a base64 body was dropped and the rest served; a body too large
    was decoded in full before the size check."""
    event = load_event("predict-instances.json")
    good = event["body"]
    junk = dict(event, body=good[:8] + "!*" + good[8:])  # decodes leniently to the same JSON
    result = invoke(junk)
    assert (result.status, result.code) == (400, "INVALID_JSON")
    assert "base64 alphabet" in result.body["error"]
    huge = dict(event, body="!" * 8_000_000)  # not even base64: the size speaks first
    result = invoke(huge)
    assert (result.status, result.code) == (413, "PAYLOAD_TOO_LARGE")
    assert result.body["error"].startswith("the request body is 6000000 bytes; at most")


def test_every_answer_says_nosniff(served, load_event):
    for name in ("health.json", "predict-instances.json", "bad-json.json"):
        assert invoke(load_event(name)).headers["X-Content-Type-Options"] == "nosniff"
    unsupported = invoke({"not": "an api gateway event"})
    assert unsupported.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("content_type", "path", "status"),
    [
        (None, "/predict", 200),
        ("application/json; charset=utf-8", "/predict", 200),
        # a JSON body is read as JSON whatever its type says, as TF Serving reads it
        ("application/x-www-form-urlencoded", "/predict", 200),  # curl -d, TF Serving's docs
        ("application/x-www-form-urlencoded", "/v1/models/mnist:predict", 200),
        ("text/plain;charset=UTF-8", "/v2/models/mnist/infer", 400),  # a v1 body: not v2's
        ("text/plain", "/predict", 200),  # a browser's fetch
    ],
)
def test_content_types(served, load_event, content_type, path, status):
    event = load_event("tfserving-predict.json")
    event["path"] = path
    event["headers"].pop("Content-Type", None)
    if content_type:
        event["headers"]["content-type"] = content_type
    assert invoke(event).status == status


def test_an_oversized_body_is_413(serve, fake_s3, load_event):
    serve(fake_s3, max_body_bytes=2000)
    result = invoke(load_event("predict-instances.json"))
    assert (result.status, result.code) == (413, "PAYLOAD_TOO_LARGE")


def test_a_batch_is_answered_in_order(served, load_event):

    digits = np.load(ROOT / "tests" / "fixtures" / "mnist" / "digits.npz")
    picks = [0, 100, 200, 300, 400, 499]
    event = with_body(
        load_event("predict-instances.json"),
        json.dumps({"instances": digits["x"][picks].astype(int).tolist()}),
    )
    labels = [p["label"] for p in invoke(event).body["predictions"]]
    assert labels == [str(digits["expected"][i]) for i in picks]


def test_405_says_which_methods_are_allowed(served, load_event):
    result = invoke(load_event("bad-method.json"))
    assert result.headers["Allow"] == "POST"
    get_predict = load_event("tfserving-status.json")
    get_predict["path"] = "/v1/models/mnist:predict"
    result = invoke(get_predict)
    assert (result.status, result.code, result.headers.get("Allow")) == (
        405,
        "METHOD_NOT_ALLOWED",
        "POST",
    )
    post_status = load_event("tfserving-predict.json")
    post_status["path"] = "/v1/models/mnist"
    assert invoke(post_status).headers.get("Allow") == "GET"


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/v1/models/mnist/versions/3:predict", 405, "POST"),
        ("DELETE", "/v1/models/mnist/metadata", 405, "GET"),
        ("GET", "/v1/models/\u2603", 404, None),  # a name no route takes: not "405 ... use GET"
        ("GET", "/v1/models/mnist:predict/metadata", 404, None),
        ("POST", "/health", 405, "GET"),
        ("DELETE", "/health/deep", 405, "GET"),
    ],
)
def test_404_and_405_follow_the_routers_own_routes(served, load_event, method, path, status, allow):
    event = load_event("health.json")
    event["httpMethod"], event["path"] = method, path
    result = invoke(event)
    assert (result.status, result.headers.get("Allow")) == (status, allow), result.body
    if allow:
        assert method not in result.body["error"].split("; use ")[1]


def test_route_not_found_lists_every_route(served, load_event):
    import app

    body = invoke(load_event("bad-route.json")).body
    for route in app.registered_routes():
        assert f"{route.method} {route.openapi_path}" in body["error"]


def test_openapi_document_is_served_and_describes_every_route(served, load_event):
    import app

    event = load_event("health.json")
    event["path"] = "/openapi.json"
    result = invoke(event)
    assert result.status == 200 and result.headers["Content-Type"] == "application/json"
    document = result.body
    assert document["openapi"].startswith("3.")
    described = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert described == {(r.method, r.openapi_path) for r in app.registered_routes()}
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"model", "instances", "images"}


def test_openapi_document_is_generated_from_the_routes_not_written_by_hand():
    """events/make_openapi.py regenerates it; `make events` after changing a route."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "events" / "make_openapi.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr


class Elements(HTMLParser):
    """Each element's attributes, by id; and every URL the page would load by itself."""

    def __init__(self, text: str):
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.urls: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = {"tag": tag, **dict(attrs)}
        if attributes.get("id"):
            self.by_id[attributes["id"]] = attributes
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "data") and v]


def test_the_page_is_served_without_a_model(serve, load_event):
    """GET / answers the page whatever the registry holds: it needs no model, only POST
    /predict does."""
    serve(FakeS3())
    event = load_event("health.json")
    event["path"] = event["resource"] = "/"
    result = invoke(event)
    assert result.status == 200
    assert result.headers["Content-Type"] == "text/html"
    assert "connect-src 'self'" in result.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in result.headers["Content-Security-Policy"]
    page = Elements(result.body)
    wanted = {
        "pad": ("canvas", None),
        "predict": ("button", "button"),
        "clear": ("button", "button"),
        "api-key": ("input", "password"),
        "upload": ("input", "file"),
        "result": ("div", None),
    }
    assert {k: (page.by_id[k]["tag"], page.by_id[k].get("type")) for k in wanted} == wanted
    assert "value" not in page.by_id["api-key"]  # the deployed page starts empty
    assert page.urls == ["data:,"]  # loads nothing: script and style inline, an empty icon
    assert 'fetch(apiUrl("predict")' in result.body


def test_other_methods_on_the_page_are_405(served, load_event):
    event = load_event("health.json")
    event["httpMethod"], event["path"], event["resource"] = "POST", "/", "/"
    result = invoke(event)
    assert (result.status, result.code, result.headers.get("Allow")) == (
        405,
        "METHOD_NOT_ALLOWED",
        "GET",
    )


def test_tfserving_routes_with_a_version(served, load_event):
    event = load_event("tfserving-status.json")
    event["path"] = f"/v1/models/mnist/versions/{V1}"
    assert invoke(event).body["model_version_status"][0]["version"] == str(V1)
    event["path"] = f"/v1/models/mnist/versions/{V1}/metadata"
    assert invoke(event).body["model_spec"]["version"] == str(V1)
    event["path"] = "/v1/models/mnist/labels/stable"
    assert invoke(event).body["model_version_status"][0]["version"] == str(V1)
    event["path"] = "/v1/models/mnist/labels/canary"  # none runs
    result = invoke(event)
    assert (result.status, result.code) == (404, "VERSION_NOT_FOUND")
    assert "stable (version" in result.body["error"]


@pytest.mark.parametrize("version", ["¹", "١", "１", "%C2%B9"])
def test_a_version_in_other_digits_is_not_found_not_a_500(served, load_event, version):
    # str.isdigit() takes these; int() refuses "¹" and reads "١" as 1 (CI's fuzzer found "¹")
    event = load_event("tfserving-status.json")
    for path in (
        f"/v1/models/mnist/versions/{version}",
        f"/v1/models/mnist/versions/{version}:predict",
    ):
        event["path"] = path
        event["httpMethod"] = "POST" if path.endswith(":predict") else "GET"
        event["body"] = '{"instances": [[0]]}' if path.endswith(":predict") else None
        result = invoke(event)
        assert (result.status, result.code) == (404, "VERSION_NOT_FOUND"), path


def test_the_metadata_names_the_classes_and_input_kind_beside_the_signature(served, load_event):
    """What the page at GET / reads to title itself: the class names and how an image becomes
    the input, beside TF Serving's own signature_def (which its clients read)."""
    event = load_event("tfserving-status.json")
    event["path"] = "/v1/models/mnist/metadata"
    metadata = invoke(event).body["metadata"]
    assert "signature_def" in metadata
    assert metadata["classifier"] == {
        "labels": [str(i) for i in range(10)],
        "input": {
            "shape": [-1, 28, 28, 1],
            "color": "grey",
            "value_range": [0.0, 255.0],
            "preprocessing": {"policy": "digit"},
        },
    }


def test_no_model_is_503_then_a_request_after_the_backoff_tries_again(
    serve, load_event, manifest, model_bytes, clock
):
    s3 = FakeS3()
    serve(s3)
    for name in ("health-deep.json", "predict-instances.json", "tfserving-status.json"):
        result = invoke(load_event(name))
        assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE")
        assert "mnist" in result.body["error"] and "next attempt" in result.body["error"]
    assert s3.reads["models/mnist/latest.json"] == 1  # the others within the backoff
    shallow = invoke(load_event("health.json"))  # says so, and tries nothing itself
    assert (shallow.status, shallow.code, shallow.body["status"]) == (
        503,
        "MODEL_UNAVAILABLE",
        "unavailable",
    )
    assert "latest.json does not exist" in shallow.body["error"]
    s3.publish(manifest, model_bytes)
    clock.advance(1)
    body = invoke(load_event("health-deep.json")).body
    assert (body["status"], body["model"]) == (
        "ok",
        {"name": "mnist", "version": V1, "role": "stable"},
    )
    assert (body["registry"]["served"], body["registry"]["pointer"]["version"]) == (V1, V1)
    assert body["models"] == [{"name": "mnist", "loaded": True, "version": V1, "refused": {}}]


def test_bad_input_is_still_400_when_no_model_is_loaded(serve, load_event):
    serve(FakeS3())
    assert invoke(load_event("bad-json.json")).code == "INVALID_JSON"
    assert invoke(load_event("bad-unknown-model.json")).code == "MODEL_NOT_FOUND"


def test_an_unexpected_error_is_a_generic_500(served, load_event, monkeypatch, capsys):
    import app

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(app, "classify", broken)
    result = invoke(load_event("predict-instances.json"))
    assert (result.status, result.code) == (500, "INTERNAL_ERROR")
    assert "fire" not in result.body["error"] and "Traceback" not in result.body["error"]
    logged = [r for r in log_records(capsys.readouterr().out) if r.get("level") == "ERROR"]
    assert (
        "RuntimeError: disk on fire" in logged[0]["exception"]
    )  # the stack trace stays server-side
    assert (
        logged[0]["correlation_id"]
        == load_event("predict-instances.json")["requestContext"]["requestId"]
    )


def test_nothing_of_the_input_is_logged(served, load_event, capsys):
    secret = "TOPSECRET-7f3a"
    for name in ("predict-instances.json", "bad-type.json"):
        event = with_body(load_event(name), json.dumps({"instances": [[[secret] * 28] * 28]}))
        invoke(event)
    captured = capsys.readouterr()
    assert secret not in captured.out and secret not in captured.err


def test_metrics(served, load_event, manifest, capsys):
    invoke(load_event("predict-instances.json"))
    invoke(load_event("predict-instances.json"))
    invoke(load_event("bad-shape.json"))
    invoke(load_event("bad-nan.json"))
    out = capsys.readouterr().out
    assert metric_values(out, "ColdStart", function_name="InferenceFunction") == [1.0]
    assert len(metric_values(out, "ModelLoadTime")) == 1
    for name in ("ModelDownloadTime", "ModelVerifyTime", "ModelBuildTime"):
        assert len(metric_values(out, name)) == 1
    assert len(metric_values(out, "InferenceTime", model_version=str(V1))) == 2
    assert metric_values(out, "InstancesPerRequest") == [1.0, 1.0]
    assert metric_values(out, "Predictions", label="7") == [1.0, 1.0]
    assert metric_values(out, "InvalidRequests", code="INVALID_SHAPE") == [1.0]
    assert metric_values(out, "InvalidRequests", code="NON_FINITE_VALUE") == [1.0]
    record = next(r for r in map(json.loads, out.splitlines()) if "InferenceTime" in r)
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ServerlessML-Test"
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["service"],
        ["service", "model", "model_version"],
        ["service", "role"],
    ]


def test_a_predict_request_writes_one_metrics_document(served, load_event, capsys):
    import app
    from tests.function_support import emf_records

    invoke(load_event("predict-instances.json"))  # the cold start: model load, ColdStart
    capsys.readouterr()
    invoke(load_event("predict-instances.json"))
    (record,) = emf_records(capsys.readouterr().out)
    names = {m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names == {
        "InferenceTime",
        "InstancesPerRequest",
        "BlankInputs",
        "Confidence",
        "InputMeanIntensity",
        "Predictions",
    }
    assert record["service"] == (app.metrics.service or "service_undefined")
    assert (record["model_version"], record["label"], record["Predictions"]) == (str(V1), "7", 1)
    assert 0.5 < record["Confidence"][0] <= 1


def test_a_large_batch_has_every_confidence_and_every_label_counted(served, load_event, capsys):
    event = load_event("predict-instances.json")
    (seven,) = json.loads(base64.b64decode(event["body"]))["instances"]
    blank = [[0] * 28] * 28
    invoke(event)  # the cold start's metrics out of the way
    capsys.readouterr()
    result = invoke(with_body(event, json.dumps({"instances": [seven] * 70 + [blank] * 80})))
    labels = [p["label"] for p in result.body["predictions"]]
    assert result.status == 200 and len(set(labels)) == 2
    out = capsys.readouterr().out
    assert len(metric_values(out, "Confidence", model_version=str(V1))) == 150
    assert {label: sum(metric_values(out, "Predictions", label=label)) for label in labels} == {
        label: labels.count(label) for label in labels
    }
    assert metric_values(out, "InstancesPerRequest") == [150.0]


def test_a_refused_version_counts_as_a_load_failure(
    serve, load_event, manifest, model_bytes, clock, capsys
):
    s3 = FakeS3()
    s3.publish(manifest, model_bytes)
    store = serve(s3, refresh_seconds=10)
    invoke(load_event("health-deep.json"))
    s3.publish(new_version(manifest, V1 + 1), model_bytes[:-1])
    clock.advance(11)
    assert invoke(load_event("health-deep.json")).body["model"]["version"] == V1
    assert store.wait(10)  # the refresh ran in the background...
    assert invoke(load_event("health-deep.json")).body["model"]["version"] == V1
    out = capsys.readouterr().out  # ...and is reported
    # one value in two series: per service (what the existing alarm watches) and per role
    assert metric_values(out, "ModelLoadFailures", role="stable") == [1.0]
    (document,) = [r for r in emf_records(out) if "ModelLoadFailures" in r]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"], ["service", "role"]]
    warning = next(r for r in log_records(out) if r.get("message") == "model load failed")
    assert warning["model_version"] == V1 + 1 and "bytes" in warning["reason"]


def test_logs_carry_the_api_gateway_request_id(served, load_event, capsys):
    event = load_event("predict-instances.json")
    invoke(event)
    loaded = next(
        r for r in log_records(capsys.readouterr().out) if r.get("message") == "model loaded"
    )
    assert loaded["correlation_id"] == event["requestContext"]["requestId"]
    assert loaded["cold_start"] is True


def _powertools_output(decorate, capsys, monkeypatch) -> list[tuple[list, list]]:
    """(log lines, EMF documents) of a cold then a warm invocation of a handler that logs
    a line and adds a metric on the cold one only, decorated by `decorate`."""
    from aws_lambda_powertools.metrics import MetricUnit

    import app

    reset_powertools(monkeypatch)
    calls = []

    def handler(event, context):
        app.logger.info("inside")
        if not calls:
            app.metrics.add_metric(name="Loaded", unit=MetricUnit.Count, value=1)
        calls.append(event)
        return {"statusCode": 200}

    wrapped = decorate(handler)
    outputs = []
    for request_id in ("a", "b"):
        context = LambdaContext()
        context.aws_request_id = request_id
        assert wrapped({}, context) == {"statusCode": 200}
        out = capsys.readouterr().out
        documents = [
            {k: v for k, v in r.items() if k != "_aws"} | {"_aws": r["_aws"]["CloudWatchMetrics"]}
            for r in emf_records(out)
        ]
        logs = [{k: v for k, v in r.items() if k != "timestamp"} for r in log_records(out)]
        outputs.append((logs, documents))
    return outputs


def test_with_powertools_writes_what_powertools_decorators_write(capsys, monkeypatch):
    """app.with_powertools against the decorators it replaces: the same log keys (cold start,
    the context's fields, the request id), the same ColdStart document, a request's own
    metrics flushed, and nothing written when a request added none."""
    import app

    def decorators(handler):
        return app.logger.inject_lambda_context(
            app.metrics.log_metrics(capture_cold_start_metric=True)(handler)
        )

    with pytest.warns(UserWarning, match="No application metrics"):  # the warm invocation
        expected = _powertools_output(decorators, capsys, monkeypatch)
    ours = _powertools_output(app.with_powertools, capsys, monkeypatch)
    assert ours == expected
    (cold_logs, cold_documents), (warm_logs, warm_documents) = ours
    assert [r["cold_start"] for r in cold_logs + warm_logs] == [True, False]
    assert [r["function_request_id"] for r in cold_logs + warm_logs] == ["a", "b"]
    assert sorted(d for document in cold_documents for d in document if d[0].isupper()) == [
        "ColdStart",
        "Loaded",
    ]
    assert warm_documents == []


def test_importing_app_stays_light():
    code = (
        "import sys, app; "
        "heavy = ('tensorflow', 'PIL', 'boto3', 'obstore', 'ai_edge_litert', "
        "'pydantic', 'aws_xray_sdk', 'aws_lambda_powertools.event_handler', 'asyncio', 'ssl', "
        "'oip', '_hashlib'); "
        "print(sorted(m for m in heavy if m in sys.modules)); "
        "app.get_tracing.cache_clear(); import os; os.environ['TRACING_MODE'] = 'xray-sdk'; "
        "print(app.get_tracing().tracer.disabled)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA", "LAMBDA_"))
    }
    output = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / "inference",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    # no TensorFlow, pydantic or boto3 ever (openapi.json is made at build time; the S3 client
    # is obstore's), nor Powertools' event_handler package (every resolver it has, asyncio and
    # ssl with them: the function has its own router); Pillow, obstore, LiteRT, the X-Ray
    # SDK and the Open Inference Protocol's module (oip) only when needed; OpenSSL's hashlib
    # (_hashlib, 3.7 MiB resident) only for a large model or a signed version (model_store)
    assert output[0] == "[]"
    assert output[1] == "True"  # Tracer switches itself off outside Lambda


ODD_BODIES = [
    '{"instances": null}',
    '{"instances": 5}',
    '{"instances": [null]}',
    '{"instances": [[[]]]}',
    '{"instances": [[1, [2]]]}',
    '{"instances": [["a", 1]]}',
    '{"instances": [{"image": 1}]}',
    '{"instances": ' + "[" * 60 + "1" + "]" * 60 + "}",
    '{"instances": [[' + ",".join(["1e308"] * 784) + "]]}",
    '{"images": [null]}',
    '{"images": "abc"}',
    '{"images": [{"b64": 3}]}',
    '{"images": ["data:image/png;base64,"]}',
    '{"inputs": [[0]]}',
    '{"instances": [[0]], "images": ["x"]}',
    "true",
    '"just a string"',
    "{}",
    "\x00\x01\x02",
]


@pytest.mark.parametrize("body", ODD_BODIES)
@pytest.mark.parametrize("path", ["/predict", "/v1/models/mnist:predict"])
def test_odd_bodies_are_always_a_4xx_with_a_code(served, load_event, body, path):
    event = with_body(load_event("predict-instances.json"), body)
    event["path"] = path
    result = invoke(event)
    assert 400 <= result.status < 500, (result.status, result.body)
    assert set(result.body) == {"error", "code"}


def test_each_prediction_is_traced_in_its_own_invoke_subsegment(served, load_event, monkeypatch):
    import contextlib

    import app

    spans: list[str] = []

    def recording_subsegment(name):
        spans.append(name)
        return contextlib.nullcontext()

    monkeypatch.setattr(app, "_subsegment", recording_subsegment)
    assert invoke(load_event("predict-instances.json")).status == 200
    assert invoke(load_event("tfserving-predict.json")).status == 200
    assert spans.count("invoke") == 2


@pytest.mark.parametrize(
    "init_type,preloaded",
    [("provisioned-concurrency", True), ("snap-start", True), ("on-demand", False)],
)
def test_model_is_loaded_during_init_only_where_init_runs_ahead_of_requests(
    serve, fake_s3, init_type, preloaded
):
    import app

    store = serve(fake_s3)
    app.preload_model({"AWS_LAMBDA_INITIALIZATION_TYPE": init_type})
    assert (store.current is not None) == preloaded


def test_a_failed_preload_is_left_to_the_first_request(serve, load_event):
    import app

    serve(FakeS3())  # an empty registry
    app.preload_model({"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"})
    assert invoke(load_event("predict-instances.json")).code == "MODEL_UNAVAILABLE"


def test_tfserving_binary_convention_decodes_b64_objects_as_images(served, load_event):
    """TF Serving's REST API: an instance (or an `inputs` element) {"b64": "..."} is binary,
    here a PNG or JPEG decoded as /predict decodes its images."""
    import base64
    import io

    from PIL import Image

    digits = np.load(ROOT / "tests" / "fixtures" / "mnist" / "digits.npz")
    buffer = io.BytesIO()
    Image.fromarray(digits["x"][0], mode="L").save(buffer, "PNG")
    image = {"b64": base64.b64encode(buffer.getvalue()).decode()}
    expected = invoke(
        with_body(
            load_event("tfserving-predict.json"),
            json.dumps({"instances": [digits["x"][0].tolist()]}),
        )
    ).body["predictions"]
    for body in ({"instances": [image]}, {"inputs": [image]}):
        answer = invoke(with_body(load_event("tfserving-predict.json"), json.dumps(body)))
        assert answer.status == 200, answer.body
        rows = answer.body.get("predictions") or answer.body.get("outputs")
        assert np.argmax(rows[0]) == np.argmax(expected[0])
    broken = invoke(
        with_body(load_event("tfserving-predict.json"), json.dumps({"instances": [{"b64": "!!"}]}))
    )
    assert (broken.status, broken.code) == (400, "INVALID_IMAGE")


def test_pixels_scaled_to_0_1_are_a_400_that_says_what_to_send(served, load_event):

    digit = np.load(ROOT / "tests" / "fixtures" / "mnist" / "digits.npz")["x"][0] / 255
    for event in ("predict-instances.json", "tfserving-predict.json"):
        answer = invoke(with_body(load_event(event), json.dumps({"instances": [digit.tolist()]})))
        assert (answer.status, answer.code) == (400, "WRONG_VALUE_RANGE")
        assert "multiply by 255" in answer.body["error"]


@pytest.mark.parametrize("style", ["black_on_white", "white_on_black", "transparent", "photo"])
def test_digits_as_people_send_them_are_answered_as_well_as_clean_ones(served, load_event, style):
    """Held-out test digits rendered as a photo, a canvas drawing, black on white or white on
    black (any size, off-centre, slightly rotated) through /predict's images, against the same
    digits sent as clean 28x28 instances: at least 95% as accurate (the digit policy)."""
    import base64

    from tests.renderings import encode, render

    digits = np.load(ROOT / "tests" / "fixtures" / "mnist" / "digits.npz")
    x, y = digits["x"][:150], digits["y"][:150]
    event = load_event("predict-instances.json")

    def accuracy(field: str, items: list) -> float:
        labels = []
        for start in range(0, len(items), 25):  # requests within MaxBodyBytes
            body = json.dumps({field: items[start : start + 25]})
            answer = invoke(with_body(event, body))
            assert answer.status == 200, answer.body
            labels += [p["class_id"] for p in answer.body["predictions"]]
        return float(np.mean(np.array(labels) == y))

    rng = np.random.default_rng(7)
    images = [base64.b64encode(encode(render(d, style, rng))).decode() for d in x]
    clean = accuracy("instances", x.tolist())
    assert accuracy("images", images) >= 0.95 * clean


def test_a_model_published_with_the_first_manifest_schema_is_still_served(serve, load_event):
    """tests/fixtures/mnist-schema1: grey (N, 28, 28), no colour or policy (images resized),
    accuracies without intervals: published before schema 2, served as it was."""
    import base64
    import io

    from PIL import Image

    from tests.function_support import SCHEMA1_DIR, schema1_manifest

    s3 = FakeS3()
    s3.publish(schema1_manifest(), (SCHEMA1_DIR / "model.tflite").read_bytes())
    serve(s3)
    digits = np.load(ROOT / "tests" / "fixtures" / "mnist" / "digits.npz")
    buffer = io.BytesIO()
    Image.fromarray(digits["x"][0], mode="L").save(buffer, "PNG")
    for body in (
        {"instances": digits["x"][:20].tolist()},
        {"images": [base64.b64encode(buffer.getvalue()).decode()]},
    ):
        answer = invoke(with_body(load_event("predict-instances.json"), json.dumps(body)))
        assert answer.status == 200, answer.body
        assert answer.body["model"]["version"] == schema1_manifest()["version"]
    labels = [p["class_id"] for p in invoke(
        with_body(load_event("predict-instances.json"),
                  json.dumps({"instances": digits["x"][:100].tolist()}))
    ).body["predictions"]]  # fmt: skip
    assert np.mean(np.array(labels) == digits["y"][:100]) > 0.85


def test_health_reports_a_refused_canary_and_a_refused_pointer_canary(
    serve, load_event, manifest, model_bytes
):
    """Issue 25: /health said ok while the pointer's canary could not be served."""
    s3 = FakeS3()
    s3.publish(manifest, model_bytes)
    broken = new_version(manifest, V1 + 1)
    broken["input"]["value_range"] = [255, 0]
    s3.publish(broken, model_bytes, pointer=False)
    pointer = json.loads(s3.objects["models/mnist/latest.json"])
    s3.objects["models/mnist/latest.json"] = json.dumps(
        {**pointer, "canary": {"version": V1 + 1, "share": 50}}
    ).encode()
    serve(s3)
    invoke(load_event("health-deep.json"))  # starts the canary's load
    import app

    app.get_chooser().canary_store(app.get_store()).wait(10)
    for event in ("health-deep.json", "health.json"):  # the open one says it too (issue 27)
        result = invoke(load_event(event))
        assert (result.status, result.body["status"]) == (200, "degraded")
        canary = result.body["registry"]["canary"]
        assert (canary["version"], canary["state"]) == (V1 + 1, "END")
        assert "low must be < high" in canary["refused"]
    for _ in range(5):  # the stable model answers every request meanwhile
        result = invoke(load_event("predict-instances.json"))
        assert result.status == 200 and result.body["model"]["version"] == V1


# -- the open, shallow GET /health against the deep one behind the API's auth ---------------


def test_the_open_health_never_reads_the_registry_nor_starts_a_load(serve, fake_s3, load_event):
    """Issue 27: GET /health is open, so an unauthenticated caller must not be able to make an
    environment load a model. It says what the environment holds; /health/deep loads."""
    store = serve(fake_s3)
    for _ in range(3):
        result = invoke(load_event("health.json"))
        assert result.status == 200, result.body
        assert (result.body["status"], result.body["model"]) == (
            "starting",
            {"name": "mnist", "version": None, "role": "stable"},
        )
        assert result.body["models"] == [
            {"name": "mnist", "loaded": False, "version": None, "refused": {}}
        ]
    assert fake_s3.reads == {} and store.current is None and store.wait(0)  # nothing started
    deep = invoke(load_event("health-deep.json"))
    assert (deep.status, deep.body["status"], deep.body["model"]["version"]) == (200, "ok", V1)
    reads = dict(fake_s3.reads)
    shallow = invoke(load_event("health.json")).body
    assert {k: shallow[k] for k in ("status", "model", "registry", "models")} == {
        k: deep.body[k] for k in ("status", "model", "registry", "models")
    }
    assert fake_s3.reads == reads


def test_the_open_health_leaves_a_due_refresh_and_the_canarys_load_to_the_deep_one(
    serve, load_event, manifest, model_bytes
):
    """The pointer names a canary and a refresh is due: the shallow health shows the canary
    LOADING without starting its load, and starts no refresh; the deep one starts both."""
    s3 = FakeS3()
    s3.publish(manifest, model_bytes)
    s3.publish(new_version(manifest, V1 + 1), model_bytes, pointer=False)
    pointer = json.loads(s3.objects["models/mnist/latest.json"])
    s3.objects["models/mnist/latest.json"] = json.dumps(
        {**pointer, "canary": {"version": V1 + 1, "share": 10}}
    ).encode()
    store = serve(s3, refresh_seconds=10)
    store.get()  # the stable model, as a preload (SnapStart, provisioned concurrency) loads it
    store._checked_at = float("-inf")  # a refresh due now
    reads = dict(s3.reads)
    body = invoke(load_event("health.json")).body
    assert (body["status"], body["model"]["version"]) == ("ok", V1)
    assert body["registry"]["canary"] == {"version": V1 + 1, "state": "LOADING"}
    assert s3.reads == reads and store.wait(0)  # no refresh, no canary load started
    invoke(load_event("health-deep.json"))  # starts both
    import app

    assert store.wait(10) and app.get_chooser().canary_store(store).wait(10)
    assert s3.reads["models/mnist/latest.json"] == reads["models/mnist/latest.json"] + 1
    body = invoke(load_event("health.json")).body
    assert body["status"] == "ok"
    assert body["registry"]["canary"] == {"version": V1 + 1, "state": "AVAILABLE"}
