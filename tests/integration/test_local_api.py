"""python -m local.api as a real HTTPS server on loopback, against the fixture model published
on the loopback S3, with a real client that verifies the server's certificate on each call.

One server for the module: no test here changes its configuration."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from tests.local_support import FIXTURE_DIR, local_api, publish_fixture

pytestmark = pytest.mark.integration
MANIFEST = json.loads((FIXTURE_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def digits():
    with np.load(FIXTURE_DIR / "digits.npz") as archive:
        return {k: archive[k] for k in archive.files}


@pytest.fixture(scope="module")
def api(s3_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("local-api")
    with local_api(folder, publish_fixture(s3_server, folder)) as running:
        yield running


def call(api, method: str, path: str, key: bool = True, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if key:
        headers["x-api-key"] = api.key
    return requests.request(
        method, api.url + path, headers=headers, verify=api.ca, timeout=30, **kwargs
    )


def test_predictions_equal_the_expected_ones(api, digits):
    labels = MANIFEST["labels"]
    predicted = []
    for start in range(0, len(digits["x"]), 100):
        answer = call(
            api, "POST", "/predict", json={"instances": digits["x"][start : start + 100].tolist()}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["model"] == {"name": "mnist", "version": MANIFEST["version"], "role": "stable"}
        predicted += [p["label"] for p in body["predictions"]]
    assert predicted == [labels[i] for i in digits["expected"]]


def test_png_image(api, digits):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(digits["x"][3], mode="L").save(buffer, "PNG")
    answer = call(
        api, "POST", "/predict", json={"images": [base64.b64encode(buffer.getvalue()).decode()]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == str(digits["expected"][3])


def test_tf_serving_api(api, digits):
    version = MANIFEST["version"]
    rows = digits["x"][:3].tolist()
    for path in ("/v1/models/mnist:predict", f"/v1/models/mnist/versions/{version}:predict"):
        answer = call(api, "POST", path, json={"instances": rows})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert np.asarray(predictions).shape == (3, 10)
        assert list(np.argmax(predictions, axis=1)) == list(digits["expected"][:3])
    columnar = call(api, "POST", "/v1/models/mnist:predict", json={"inputs": rows})
    assert np.asarray(columnar.json()["outputs"]).shape == (3, 10)
    status = call(api, "GET", "/v1/models/mnist").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert status["model_version_status"][0]["version"] == str(version)
    metadata = call(api, "GET", "/v1/models/mnist/metadata").json()
    assert metadata["model_spec"]["name"] == "mnist"
    assert "signature_def" in metadata["metadata"]


def test_api_key_required_and_checked(api, digits):
    body = {"instances": digits["x"][:1].tolist()}
    for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": ""}):
        answer = call(api, "POST", "/predict", key=False, headers=headers, json=body)
        assert answer.status_code == 403
        assert answer.json()["code"] == "FORBIDDEN" and answer.json()["error"]
        assert answer.headers["x-amzn-errortype"] == "ForbiddenException"  # the gateway's
    refused = (("GET", "/v1/models/mnist"), ("GET", "/nope"), ("DELETE", "/health"))
    for method, path in (*refused, ("GET", "/health/deep")):
        assert call(api, method, path, key=False).status_code == 403, path
    assert call(api, "POST", "/predict", json=body).status_code == 200
    deep = call(api, "GET", "/health/deep")  # the deep health, with the key
    assert deep.status_code == 200 and deep.json()["model"]["name"] == "mnist"
    assert call(api, "GET", "/health", key=False).status_code == 200  # open by design
    assert (
        call(api, "GET", "/health", key=False, headers={"x-api-key": "wrong"}).status_code == 200
    )  # and not checked there


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/predict", {"json": {"instances": [[1, 2, 3]]}}, 400, "INVALID_SHAPE"),
        (
            "POST",
            "/predict",
            {"json": {"instances": [[[300] * 28] * 28]}},
            400,
            "VALUE_OUT_OF_RANGE",
        ),
        ("POST", "/predict", {"json": {"instances": []}}, 400, "EMPTY_BATCH"),
        ("POST", "/predict", {"json": {"images": ["bm90IGFuIGltYWdl"]}}, 400, "INVALID_IMAGE"),
        # API Gateway's request validator (the template's PredictRequest model) answers first
        ("POST", "/predict", {"json": {"foo": 1}}, 400, "INVALID_REQUEST_BODY"),
        (
            "POST",
            "/predict",
            {"data": "{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "INVALID_REQUEST_BODY",
        ),
        (
            "POST",
            "/predict",
            {"data": "instances=1", "headers": {"Content-Type": "text/plain"}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        # POST /predict validates its body; its other methods reach the function (per method)
        ("GET", "/predict", {}, 405, "METHOD_NOT_ALLOWED"),
        ("PUT", "/predict", {"json": {"foo": 1}}, 405, "METHOD_NOT_ALLOWED"),
        # a body that is not UTF-8 reaches the function, as API Gateway passes it on
        (
            "POST",
            "/v1/models/mnist:predict",
            {"data": b"\xff\xfe{", "headers": {"Content-Type": "application/json"}},
            400,
            "INVALID_JSON",
        ),
        # nested deeper than Python's JSON parser goes: the emulator answered 500 (plain text,
        # then 502 JSON); the function answers 400 on both kinds of route
        *[
            (
                "POST",
                path,
                {
                    "data": '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}",
                    "headers": {"Content-Type": "application/json"},
                },
                400,
                "INVALID_JSON",
            )
            for path in ("/predict", "/v1/models/mnist:predict")
        ],
        ("GET", "/v1/models/\u2603", {}, 404, "ROUTE_NOT_FOUND"),  # was a 405 "use GET"
        ("GET", "/v1/models/%E2%98%83", {}, 404, "ROUTE_NOT_FOUND"),
        ("OPTIONS", "/v1/models/mnist:predict", {}, 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/no/such/route", {}, 404, "ROUTE_NOT_FOUND"),
        ("POST", "/", {"json": {}}, 405, "METHOD_NOT_ALLOWED"),  # GET / is the page
        ("GET", "/v1/models/other", {}, 404, "MODEL_NOT_FOUND"),
        ("GET", "/v1/models/mnist/versions/1", {}, 404, "VERSION_NOT_FOUND"),
        (
            "POST",
            "/v1/models/mnist:predict",
            {"json": {"instances": [[1]], "inputs": [[1]]}},
            400,
            "AMBIGUOUS_INPUT",
        ),
        (
            "POST",
            "/predict",
            {
                "data": b"{" + b" " * 11 * 1024 * 1024 + b"}",
                "headers": {"Content-Type": "application/json"},
            },
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ],
)
def test_bad_requests_answer_4xx_with_codes(api, method, path, kwargs, status, code):
    answer = call(api, method, path, **kwargs)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in answer.text


def test_the_local_api_refuses_what_api_gateway_and_lambda_would(api):
    """API Gateway: request line and headers at most 10240 bytes; Lambda: an event of at most
    6 MiB (a 6-10 MB body passes API Gateway and is refused by Lambda). Either is a 413 before
    the function runs; the function itself never sees the request."""
    # (the message is the template's REQUEST_TOO_LARGE gateway response, as API Gateway's)
    answer = call(api, "GET", "/health", headers={"X-Big": "a" * 11_000})
    assert (answer.status_code, answer.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")
    body = b'{"instances": [' + b" " * (7 * 1024 * 1024) + b"]}"  # under API Gateway's 10 MB
    answer = call(api, "POST", "/predict", data=body, headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (413, "PAYLOAD_TOO_LARGE"), answer.text
    assert "API Gateway" in answer.json()["error"]  # the gateway's answer, not the function's
    ok = call(api, "GET", "/health", headers={"X-Small": "a" * 9_000})
    assert ok.status_code == 200 and ok.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_needs_no_key_and_has_this_apis_key(api):
    page = call(api, "GET", "/", key=False)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html"
    assert f'id="api-key" value="{api.key}"' in page.text and '<canvas id="pad"' in page.text
    assert call(api, "POST", "/", key=False).status_code == 403  # other methods need the key


def test_twenty_concurrent_clients(api, digits):
    def client(n: int) -> list[tuple[str, str]]:
        with requests.Session() as session:
            answers = []
            for i in range(n * 5, n * 5 + 5):
                response = session.post(
                    f"{api.url}/predict",
                    verify=api.ca,
                    timeout=60,
                    headers={"x-api-key": api.key},
                    json={"instances": [digits["x"][i].tolist()]},
                )
                assert response.status_code == 200, response.text
                answers.append(
                    (response.json()["predictions"][0]["label"], str(digits["expected"][i]))
                )
            return answers

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [a for answers in pool.map(client, range(20)) for a in answers]
    assert len(results) == 100
    assert all(got == want for got, want in results)
    log = api.function_log()
    assert 1 <= log.count("INIT_START") <= 2  # never more environments than allowed
    assert log.count("START RequestId") == log.count("END RequestId") >= 100


def test_function_log_has_lambdas_lines_and_metrics(api, digits):
    call(api, "POST", "/predict", json={"instances": digits["x"][:1].tolist()})
    lines = api.function_log().splitlines()
    assert any(
        line.startswith("REPORT RequestId: ") and "Max Memory Used" in line for line in lines
    )
    emf = [json.loads(line) for line in lines if line.startswith('{"_aws"')]
    assert any("InferenceTime" in m for m in emf)
    assert all(m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ServerlessML" for m in emf)
