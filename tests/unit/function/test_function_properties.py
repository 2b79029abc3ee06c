"""Property-based tests (Hypothesis) of the request parsing, through app.lambda_handler: any
JSON value or byte string as body, any header set, any path, any event: never a 5xx, never a
stack trace, never an exception out of the handler, always {"error", "code"} on an error.

Bounded and in memory (the fixture model behind a fake registry): 80 examples of each
property in `make test`, 1,500 in `make test-slow` (the `slow` parameter).
"""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errors import STATUS_BY_CODE
from local.bootstrap import LambdaContext

SWEEPS = [80, pytest.param(1500, marks=pytest.mark.slow, id="slow")]


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


ROUTES = [
    ("POST", "/predict"),
    ("POST", "/v1/models/mnist:predict"),
    ("POST", "/v1/models/mnist/versions/1796000000:predict"),
    ("GET", "/v1/models/mnist"),
    ("GET", "/v1/models/mnist/metadata"),
    ("GET", "/health"),
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=40,
)
# bodies a client could mean as predictions: the fields the routes read, with any values
predict_like = st.fixed_dictionaries(
    {},
    optional={
        "instances": json_values,
        "inputs": json_values,
        "images": st.lists(st.text(max_size=40) | json_values, max_size=4),
        "signature_name": st.text(max_size=20) | json_values,
    },
)
header_names = st.sampled_from(
    [
        "Content-Type",
        "content-type",
        "Accept",
        "x-api-key",
        "Content-Length",
        "Host",
        "X-Forwarded-For",
    ]
) | st.text(min_size=1, max_size=20)
headers = st.dictionaries(header_names, st.text(max_size=60), max_size=6)


@pytest.fixture
def served(serve, fake_s3):
    store = serve(fake_s3)
    store.get()  # the model loaded once: the properties are about parsing, not loading
    return store


def answer(event) -> dict:
    import app

    response = app.lambda_handler(event, LambdaContext(function_name="InferenceFunction"))
    check_answer(response)
    return response


def check_answer(response: dict) -> None:
    assert isinstance(response, dict) and isinstance(response["statusCode"], int)
    status = response["statusCode"]
    assert 200 <= status < 500, response
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    assert "Traceback" not in body and 'File "' not in body
    headers = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    if headers.get("content-type", [""])[0].startswith("text/html"):  # GET /: the page
        assert status == 200 and body.lstrip().startswith("<!doctype html>")
        return
    document = json.loads(body)
    if status >= 400:
        assert set(document) == {"error", "code"}, document
        assert STATUS_BY_CODE[document["code"]] == status
        assert isinstance(document["error"], str) and document["error"]


def event_for(load_event, method: str, path: str, body, base64_body: bool = False) -> dict:
    event = load_event("predict-instances.json")
    event["httpMethod"], event["path"] = method, path
    if isinstance(body, bytes):
        event["isBase64Encoded"] = True
        event["body"] = base64.b64encode(body).decode()
    else:
        event["isBase64Encoded"] = base64_body and body is not None
        event["body"] = (
            base64.b64encode(body.encode()).decode() if event["isBase64Encoded"] else body
        )
    return event


def dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


@pytest.mark.parametrize("count", SWEEPS)
def test_any_json_value_as_body(served, load_event, count):
    @examples(count)
    @given(st.sampled_from(ROUTES), json_values | predict_like, st.booleans())
    def check(route, value, encoded):
        answer(event_for(load_event, *route, dumps(value), base64_body=encoded))

    check()


@pytest.mark.parametrize("count", SWEEPS)
def test_any_bytes_or_text_as_body(served, load_event, count):
    @examples(count)
    @given(st.sampled_from(ROUTES), st.binary(max_size=300) | st.text(max_size=300) | st.none())
    def check(route, body):
        answer(event_for(load_event, *route, body))

    check()


@pytest.mark.parametrize("count", SWEEPS)
def test_any_header_set(served, load_event, count):
    @examples(count)
    @given(st.sampled_from(ROUTES), headers)
    def check(route, header_set):
        event = event_for(load_event, *route, dumps({"instances": [[[0] * 28] * 28]}))
        event["headers"] = header_set
        event["multiValueHeaders"] = {k: [v] for k, v in header_set.items()}
        answer(event)

    check()


@pytest.mark.parametrize("count", SWEEPS)
def test_any_path_and_method(served, load_event, count):
    @examples(count)
    @given(
        st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
        | st.text(min_size=1, max_size=8),
        st.builds(lambda p: "/" + p, st.text(max_size=60))
        | st.builds(lambda p: "/v1/models/" + p, st.text(max_size=40)),
    )
    def check(method, path):
        answer(event_for(load_event, method, path, dumps({"instances": [[[0] * 28] * 28]})))

    check()


@pytest.mark.parametrize("count", SWEEPS)
def test_any_event_at_all(served, load_event, count):
    """Events a caller could send to Lambda: any JSON value, or a proxy event with any of its
    fields replaced by any JSON value."""
    proxy_event = load_event("health.json")

    @examples(count)
    @given(
        json_values
        | st.builds(
            lambda key, value: {**proxy_event, key: value},
            st.sampled_from(sorted(proxy_event)),
            json_values,
        )
    )
    def check(event):
        answer(event)

    check()


@pytest.mark.parametrize("count", SWEEPS)
def test_json_numbers_at_the_edges(served, load_event, count):
    @examples(min(count, 300))  # 784 numbers an example: fewer of them
    @given(
        st.lists(
            st.integers(min_value=-(10**30), max_value=10**30)
            | st.floats(allow_nan=False, allow_infinity=False),
            min_size=784,
            max_size=784,
        )
    )
    def check(values):
        body = dumps({"instances": [values]})
        response = answer(event_for(load_event, "POST", "/predict", body))
        in_range = all(
            0 <= v <= 255 and not (isinstance(v, float) and math.isnan(v)) for v in values
        )
        assert (response["statusCode"] == 200) <= in_range  # 200 only for pixels in 0..255

    check()
