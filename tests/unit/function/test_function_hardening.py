"""app.lambda_handler against what callers and faults can throw at it: events that are not API
Gateway requests, hostile image batches (budgets checked before decoding), the invocation's
deadline, a registry that hangs. The store is over an in-memory registry with the fixture."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from local.bootstrap import LambdaContext
from tests.function_support import FakeS3, invoke, metric_values, with_body

REST = {"httpMethod": "GET", "path": "/health", "headers": {}, "body": None}
FOREIGN_EVENTS = {
    "empty object": {},
    "array": [],
    "null": None,
    "string": "GET /health",
    "number": 5,
    "s3 notification": {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}}}]},
    "sqs message": {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]},
    "eventbridge": {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}},
    "body is a number": {**REST, "body": 123},
    "headers is a list": {**REST, "headers": [1]},
    "header value is a number": {**REST, "headers": {"content-type": 5}},
    "method is a number": {**REST, "httpMethod": 5},
    "no path": {"httpMethod": "GET"},
    "relative path": {**REST, "path": "health"},
    "multi-value headers of strings": {**REST, "multiValueHeaders": {"a": "b"}},
    "query of numbers": {**REST, "queryStringParameters": {"a": 1}},
    "base64 flag is text": {**REST, "isBase64Encoded": "yes"},
    "request context is a list": {**REST, "requestContext": []},
}


@pytest.fixture
def served(serve, fake_s3):
    return serve(fake_s3)


@pytest.mark.parametrize("name", FOREIGN_EVENTS)
def test_an_event_that_is_not_a_rest_api_request_is_a_proxy_shaped_400(served, name, capsys):
    import app

    response = app.lambda_handler(FOREIGN_EVENTS[name], LambdaContext(function_name="f"))
    assert response["statusCode"] == 400 and response["isBase64Encoded"] is False
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    body = json.loads(response["body"])
    assert set(body) == {"error", "code"} and body["code"] == "UNSUPPORTED_EVENT"
    assert "API Gateway proxy event" in body["error"] or "the event's" in body["error"]
    out = capsys.readouterr().out
    assert "Traceback" not in response["body"] and "Traceback" not in out
    assert metric_values(out, "InvalidRequests", code="UNSUPPORTED_EVENT") == [1.0]


def test_the_answer_says_what_kind_of_event_it_got(served):
    import app

    for name, kind in (("eventbridge", "EventBridge"), ("s3 notification", "aws:s3")):
        body = json.loads(app.lambda_handler(FOREIGN_EVENTS[name], LambdaContext())["body"])
        assert kind in body["error"]


V2 = {  # an HTTP API event (payload format 2.0), the fields the function reads
    "version": "2.0",
    "routeKey": "GET /health",
    "rawPath": "/health",
    "headers": {},
    "requestContext": {"http": {"method": "GET", "path": "/health"}, "stage": "$default"},
}
MALFORMED_V2 = {
    "no method": {**V2, "requestContext": {"http": {}}},
    "version 1.0 with a rawPath": {**V2, "version": "1.0"},
    "relative rawPath": {**V2, "rawPath": "health"},
    "headers of numbers": {**V2, "headers": {"content-type": 5}},
    "cookies not a list": {**V2, "cookies": "a=b"},
    "body is a number": {**V2, "body": 5},
}


@pytest.mark.parametrize("name", MALFORMED_V2)
def test_a_malformed_http_api_event_is_a_400_in_its_own_payload_format(served, name, capsys):
    import app

    response = app.lambda_handler(MALFORMED_V2[name], LambdaContext(function_name="f"))
    assert response["statusCode"] == 400 and "multiValueHeaders" not in response
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert body["code"] == "UNSUPPORTED_EVENT" and "Traceback" not in capsys.readouterr().out


def test_a_named_stage_leaves_the_path_of_an_http_api_event(served):
    """An HTTP API puts a named stage in rawPath (/prod/health/deep); $default has none."""
    import app

    for stage, raw_path in (("prod", "/prod/health/deep"), ("$default", "/health/deep")):
        context = {**V2["requestContext"], "stage": stage}
        event = {**V2, "rawPath": raw_path, "requestContext": context}
        response = app.lambda_handler(event, LambdaContext())
        assert response["statusCode"] == 200, response
        assert json.loads(response["body"])["status"] == "ok"


# The shapes a header map can take in a malformed event, and the plain reading of the rule
# ("an object of string arrays or null"), one value at a time: proxy.event_problem must answer
# exactly that for every combination, whichever way it checks.
MAP_VALUES = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.integers(),
    st.lists(st.text(max_size=3) | st.integers() | st.none() | st.lists(st.text(max_size=2))),
    st.dictionaries(st.text(max_size=2), st.text(max_size=2)),
    st.tuples(st.text(max_size=2)),
)
HEADER_MAPS = (
    st.none()
    | st.lists(st.text(max_size=2))
    | st.dictionaries(st.text(max_size=3) | st.integers(), MAP_VALUES, max_size=4)
)


def _string_arrays_or_null(value) -> bool:
    return value is None or (
        isinstance(value, dict)
        and all(isinstance(k, str) for k in value)
        and all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in value.values())
    )


@settings(max_examples=400, deadline=None)
@given(HEADER_MAPS, HEADER_MAPS)
def test_multi_value_maps_are_refused_exactly_when_they_are_not_string_arrays(headers, query):
    import proxy

    event = {**REST, "multiValueHeaders": headers, "multiValueQueryStringParameters": query}
    problem = proxy.event_problem(event)
    if not _string_arrays_or_null(headers):
        assert (
            problem == "the event's 'multiValueHeaders' must be an object of string arrays or null"
        )
    elif not _string_arrays_or_null(query):
        assert problem == (
            "the event's 'multiValueQueryStringParameters' must be an object of string arrays "
            "or null"
        )
    else:
        assert problem is None


# -- hostile image batches ----------------------------------------------------------------


def jpeg_claiming(side: int, keep: int = 450) -> bytes:
    """A real JPEG of side x side cut after `keep` bytes and closed with an end-of-image
    marker: its header claims the whole image; libjpeg would pad the rest."""
    image = Image.new("L", (side, side), 255)
    ImageDraw.Draw(image).rectangle([0, 0, side, side // 64], fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    return buffer.getvalue()[:keep] + b"\xff\xd9"


def png_of(side: int, mode: str = "1") -> bytes:
    image = Image.new(mode, (side, side))
    ImageDraw.Draw(image).line([(side // 2, side // 5), (side // 2, 4 * side // 5)], fill=1)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def images_event(load_event, *images: bytes) -> dict:
    body = {"images": [base64.b64encode(data).decode() for data in images]}
    return with_body(load_event("predict-image.json"), json.dumps(body))


@pytest.fixture
def decoded(monkeypatch):
    """The images that reached decoding (preprocessing.prepare), counted."""
    import preprocessing

    calls: list = []
    real = preprocessing.prepare
    monkeypatch.setattr(
        preprocessing, "prepare", lambda image, spec: calls.append(image.size) or real(image, spec)
    )
    return calls


def test_truncated_jpegs_claiming_a_large_size_are_refused_before_decoding(
    served, load_event, decoded
):
    """The issue's batch: 256 JPEGs whose headers claim 4096x4096, cut after 450 bytes: 200
    with garbage predictions in 4.4 s at 64, the environment killed at 256."""
    for count in (1, 64, 256):
        result = invoke(images_event(load_event, *[jpeg_claiming(4096)] * count))
        assert (result.status, result.code) == (400, "INVALID_IMAGE")
        assert "images[0] is a damaged or truncated JPEG" in result.body["error"]
    assert decoded == []


def test_a_cut_jpeg_without_an_end_marker_is_refused(served, load_event):
    whole = jpeg_claiming(256, keep=10**9)[:-2]
    assert invoke(images_event(load_event, whole)).status == 200
    result = invoke(images_event(load_event, whole[: len(whole) // 2]))
    assert (result.status, result.code) == (400, "INVALID_IMAGE")


def test_the_batch_pixel_budget_is_checked_from_the_headers_before_any_decoding(
    serve, fake_s3, load_event, decoded
):
    serve(fake_s3, max_batch_pixels=3 * 1000 * 1000)
    big = png_of(1000)  # a few hundred bytes, a million pixels
    assert invoke(images_event(load_event, big, big, big)).status == 200
    assert len(decoded) == 3
    decoded.clear()
    result = invoke(images_event(load_event, big, big, big, big))
    assert (result.status, result.code) == (413, "PAYLOAD_TOO_LARGE")
    assert "3000000 pixels" in result.body["error"] and "images[3]" in result.body["error"]
    assert decoded == []


def test_one_image_above_the_pixel_limit_is_refused_by_its_header(
    serve, fake_s3, load_event, decoded
):
    serve(fake_s3, max_image_pixels=500 * 500)
    result = invoke(images_event(load_event, png_of(28), png_of(501)))
    assert (result.status, result.code) == (400, "INVALID_IMAGE")
    assert "images[1] is 501x501 pixels" in result.body["error"]
    assert decoded == []


def test_images_are_not_decoded_past_the_invocations_deadline(served, load_event, decoded):
    """The deadline is the remaining time minus DEADLINE_MARGIN_SECONDS (0.5 s): with 0.4 s
    left, nothing may be decoded; the answer is a 413 that says so, well inside the time."""
    served.get()  # a warm environment
    context = LambdaContext(deadline_ms=int(time.time() * 1000) + 400)
    result = invoke(images_event(load_event, png_of(28)), context)
    assert (result.status, result.code) == (413, "PAYLOAD_TOO_LARGE")
    assert "did not finish in the time" in result.body["error"]
    assert decoded == []


def test_large_images_are_reduced_before_the_per_pixel_work(served, load_event, monkeypatch):
    """A 4096x4096 RGBA canvas: transparency was flattened in float32 at full size (2.2 s and
    575 MB per image); now on a copy at most 512 pixels a side."""
    import mlcore.images as images

    sizes: list = []
    real = images.flatten_transparency
    monkeypatch.setattr(
        images, "flatten_transparency", lambda image: sizes.append(image.size) or real(image)
    )
    canvas = Image.new("RGBA", (4096, 4096), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line([(2048, 800), (2048, 3300)], fill=(0, 0, 0, 255), width=300)
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    assert invoke(images_event(load_event, buffer.getvalue())).status == 200
    assert sizes and max(sizes[0]) <= images.MAX_WORKING_SIDE


# -- the registry within the deadline -----------------------------------------------------


class SilentS3(FakeS3):
    """An S3 that never answers until released (what a black-holed endpoint looks like to the
    loading thread, which is bounded by the client's own timeouts)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def get_object(self, Bucket, Key):  # noqa: N803
        self.release.wait(30)
        return super().get_object(Bucket=Bucket, Key=Key)


def test_a_cold_start_against_a_silent_registry_answers_503_at_its_deadline(
    serve, load_event, manifest, model_bytes
):
    s3 = SilentS3()
    s3.publish(manifest, model_bytes)
    store = serve(s3)
    context = LambdaContext(deadline_ms=int(time.time() * 1000) + 800)  # deadline: 0.3 s
    answered: list = []
    thread = threading.Thread(
        target=lambda: answered.append(invoke(load_event("predict-instances.json"), context))
    )
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the request outlived its deadline"
    assert (answered[0].status, answered[0].code) == (503, "MODEL_UNAVAILABLE")
    assert "still loading" in answered[0].body["error"]
    s3.release.set()
    assert store.wait(10)
    assert invoke(load_event("predict-instances.json")).status == 200


# -- 404 and 405 say only what is true ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("OPTIONS", "/v1/models/mnist:predict", 405, "POST"),  # was "GET, POST"
        ("GET", "/v1/models/mnist:predict", 405, "POST"),
        ("DELETE", "/v1/models/mnist/versions/3:predict", 405, "POST"),
        ("PUT", "/v1/models/mnist", 405, "GET"),
        ("GET", "/v1/models/\u2603", 404, None),  # the 405 "GET ... use GET"
        ("GET", "/v1/models/%E2%98%83", 404, None),
        ("GET", "/v1/models/x:y", 404, None),
    ],
)
def test_405_allows_only_methods_that_serve_the_path(served, method, path, status, allow):
    event = {"httpMethod": method, "path": path, "headers": {}, "body": None}
    result = invoke(event)
    assert result.status == status, result.body
    assert result.headers.get("Allow") == allow
    if allow:
        assert f"use {allow}" in result.body["error"] and method not in allow
