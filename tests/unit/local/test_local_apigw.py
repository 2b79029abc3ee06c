"""local.apigw: API Gateway's routing, proxy event, response mapping and own answers."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local import apigw
from local import template as tpl
from local.template import ApiSpec, RouteSpec

ROOT = Path(__file__).resolve().parents[3]


def route(method: str, path: str, key: bool = True, **extra) -> RouteSpec:
    return RouteSpec(method, path, "Fn", "Api", f"{method} {path}", key, **extra)


API = ApiSpec("Api", "prod")


@pytest.fixture(scope="module")
def project():
    template = tpl.Template(ROOT / "template.yaml")
    return apigw.RouteTable(template.routes()), template.apis()


@pytest.mark.parametrize(
    ("method", "path", "event", "params"),
    [
        ("POST", "/predict", "Predict", {}),
        ("GET", "/predict", "PredictOtherMethods", {}),
        ("GET", "/health", "Health", {}),
        ("POST", "/health", "HealthOtherMethods", {}),
        ("POST", "/v1/models/mnist:predict", "TfServing", {"proxy": "mnist:predict"}),
        (
            "GET",
            "/v1/models/mnist/versions/7/metadata",
            "TfServing",
            {"proxy": "mnist/versions/7/metadata"},
        ),
        # parents of a path exist in API Gateway without methods: the request falls through
        ("GET", "/v1/models", "Fallback", {"proxy": "v1/models"}),
        ("GET", "/v1", "Fallback", {"proxy": "v1"}),
        ("DELETE", "/no/such/thing", "Fallback", {"proxy": "no/such/thing"}),
        ("GET", "/", "Root", {}),  # {proxy+} needs at least one segment
    ],
)
def test_project_routes_resolve_like_api_gateway(project, method, path, event, params):
    table, _ = project
    match = table.match(method, path)
    assert match is not None
    assert (match.route.event_id, match.path_parameters) == (event, params)


def test_specificity_literal_then_parameter_then_greedy():
    table = apigw.RouteTable(
        [
            route("GET", "/{proxy+}"),
            route("GET", "/users/{id}"),
            route("GET", "/users/me"),
            route("ANY", "/users/{id}/{rest+}"),
        ]
    )
    assert table.match("GET", "/users/me").resource == "/users/me"
    assert table.match("GET", "/users/42").path_parameters == {"id": "42"}
    assert table.match("GET", "/users/42/a/b").path_parameters == {"id": "42", "rest": "a/b"}
    assert table.match("GET", "/users").resource == "/{proxy+}"
    assert table.match("GET", "/users/me/").resource == "/users/me"  # trailing slash


def test_resolution_is_on_the_resource_method_pair():
    """A resource without the method does not keep the request (measured on AWS)."""
    table = apigw.RouteTable(
        [route("GET", "/jobs/{op}"), route("ANY", "/{proxy+}"), route("POST", "/admin")]
    )
    assert table.match("GET", "/jobs/reboot").resource == "/jobs/{op}"
    assert table.match("POST", "/jobs/reboot").resource == "/{proxy+}"
    assert table.match("GET", "/admin").resource == "/{proxy+}"
    only = apigw.RouteTable([route("POST", "/predict")])
    assert only.match("GET", "/predict") is None
    assert only.match("POST", "/") is None


def test_own_method_beats_any_on_the_same_resource():
    table = apigw.RouteTable([route("ANY", "/predict"), route("POST", "/predict")])
    assert table.match("POST", "/predict").route.method == "POST"
    assert table.match("put", "/predict").route.method == "ANY"


def request(**overrides) -> apigw.HttpRequest:
    fields = dict(
        method="POST",
        path="/predict",
        query_string="a=1&b=x&a=2&empty=",
        headers=[
            ("host", "127.0.0.1:3000"),
            ("content-type", "application/json"),
            ("x-api-key", "secret"),
            ("accept", "a/b"),
            ("accept", "c/d"),
            ("user-agent", "pytest"),
        ],
        body=b'{"instances": []}',
        client_ip="127.0.0.1",
        scheme="https",
        port=3000,
    )
    fields.update(overrides)
    return apigw.HttpRequest(**fields)


@pytest.fixture(scope="module")
def sam_event(tmp_path_factory):
    """What `sam local generate-event apigateway aws-proxy` prints (the API Gateway sample)."""
    sam = shutil.which("sam", path=str(Path(sys.executable).parent))
    if not sam:
        pytest.skip("the sam CLI is not installed")
    out = subprocess.run(
        [
            sam,
            "local",
            "generate-event",
            "apigateway",
            "aws-proxy",
            "--method",
            "POST",
            "--path",
            "predict",
            "--body",
            "{}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=tmp_path_factory.mktemp("sam"),
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    ).stdout
    return json.loads(out[out.index("{") :])


def test_event_has_the_shape_api_gateway_sends(sam_event):
    match = apigw.RouteTable([route("POST", "/predict")]).match("POST", "/predict")
    event = apigw.build_event(
        request(), match, API, request_id="rid", api_key="secret", now=1_764_300_000.5
    )
    assert set(event) == set(sam_event)
    assert set(event["requestContext"]) >= set(sam_event["requestContext"])
    assert set(event["requestContext"]["identity"]) >= set(sam_event["requestContext"]["identity"])
    for key in (
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
    ):
        assert isinstance(event[key], dict), key
    context = event["requestContext"]
    assert (context["requestId"], context["stage"], context["httpMethod"]) == (
        "rid",
        "prod",
        "POST",
    )
    assert (context["resourcePath"], context["path"]) == ("/predict", "/prod/predict")
    assert context["requestTimeEpoch"] == 1_764_300_000_500
    assert context["requestTime"] == "28/Nov/2025:03:20:00 +0000"
    assert context["identity"]["apiKey"] == "secret"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "pytest"


def test_event_values():
    match = apigw.RouteTable([route("ANY", "/v1/models/{proxy+}", key=False)]).match(
        "POST", "/v1/models/mnist:predict"
    )
    event = apigw.build_event(request(path="/v1/models/mnist:predict"), match, API)
    assert event["resource"] == "/v1/models/{proxy+}"
    assert event["path"] == "/v1/models/mnist:predict"
    assert event["pathParameters"] == {"proxy": "mnist:predict"}
    assert event["body"] == '{"instances": []}' and event["isBase64Encoded"] is False
    # API Gateway: the last value in the single-value maps, all of them in the multi-value ones
    assert event["queryStringParameters"] == {"a": "2", "b": "x", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"], "empty": [""]}
    assert event["headers"]["Accept"] == "c/d"
    assert event["multiValueHeaders"]["Accept"] == ["a/b", "c/d"]
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["headers"]["X-Forwarded-Port"] == "3000"
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert event["stageVariables"] is None
    assert "apiKey" not in event["requestContext"]["identity"]  # the route needs no key
    assert (
        event["requestContext"]["requestId"]
        != apigw.build_event(request(), match, API)["requestContext"]["requestId"]
    )  # one per request


def test_event_without_body_or_query():
    match = apigw.RouteTable([route("GET", "/health")]).match("GET", "/health")
    event = apigw.build_event(
        request(method="GET", path="/health", query_string="", body=b""),
        match,
        ApiSpec("Api", "prod", stage_variables={"v": "1"}),
    )
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["stageVariables"] == {"v": "1"}


def test_binary_media_types_are_base64_encoded():
    api = ApiSpec("Api", "prod", binary_media_types=("image/*",))
    match = apigw.RouteTable([route("POST", "/predict")]).match("POST", "/predict")
    png = b"\x89PNG\r\n\x1a\n\xff\x00"
    event = apigw.build_event(
        request(headers=[("content-type", "image/png")], body=png), match, api
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == png


def test_the_event_reads_right_through_powertools():
    """The function reads events with Powertools' data class: check it agrees."""
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    match = apigw.RouteTable([route("ANY", "/{proxy+}")]).match("PUT", "/a/b")
    parsed = APIGatewayProxyEvent(apigw.build_event(request(method="PUT", path="/a/b"), match, API))
    assert (parsed.http_method, parsed.path, parsed.resource) == ("PUT", "/a/b", "/{proxy+}")
    assert parsed.json_body == {"instances": []}
    assert parsed.headers.get("x-api-key") == "secret"  # case-insensitive in Powertools
    assert parsed.get_query_string_value("a") == "2"
    assert parsed.path_parameters == {"proxy": "a/b"}


# -- response mapping ----------------------------------------------------------------------
def test_response_mapping():
    status, headers, body = apigw.map_response(
        {
            "statusCode": 405,
            "body": '{"error": "x"}',
            "headers": {"Allow": "GET", "X-One": "1", "Content-Length": "999"},
            "multiValueHeaders": {"X-One": ["1"], "Set-Cookie": ["a=1", "b=2"]},
            "isBase64Encoded": False,
        },
        API,
    )
    assert status == 405 and body == b'{"error": "x"}'
    assert headers.count(("X-One", "1")) == 1  # a pair in both maps appears once
    assert ("Set-Cookie", "a=1") in headers and ("Set-Cookie", "b=2") in headers
    assert ("Allow", "GET") in headers
    assert ("Content-Type", "application/json") in headers  # the default
    assert not any(name.lower() == "content-length" for name, _ in headers)
    assert apigw.map_response({"body": "ok"}, API)[0] == 200  # statusCode defaults to 200
    assert apigw.map_response({"statusCode": 204}, API)[2] == b""


def test_base64_body_is_decoded_for_binary_types_only():
    api = ApiSpec("Api", "prod", binary_media_types=("image/png",))
    answer = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(b"\x00\xff").decode(),
        "isBase64Encoded": True,
    }
    assert apigw.map_response(answer, api)[2] == b"\x00\xff"
    assert apigw.map_response(answer, api, accept="image/*")[2] == b"\x00\xff"
    assert (
        apigw.map_response(answer, api, accept="application/json")[2] == answer["body"].encode()
    )  # the client does not accept it: left as text
    assert apigw.map_response(answer, API)[2] == answer["body"].encode()


@pytest.mark.parametrize(
    "payload",
    [
        "just a string",
        ["a list"],
        {"statusCode": 200, "extra": 1},
        {"statusCode": "abc"},
        {"statusCode": 700},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "isBase64Encoded": "maybe"},
    ],
)
def test_malformed_responses(payload):
    with pytest.raises(apigw.MalformedResponse):
        apigw.map_response(payload, API)


# -- API Gateway's own answers -------------------------------------------------------------
def test_gateway_responses_from_the_project_template(project):
    table, apis = project
    api = apis[table.routes[0].api_id]
    forbidden = apigw.gateway_response(api, "INVALID_API_KEY", "Forbidden")
    assert forbidden.status == 403
    assert json.loads(forbidden.body)["code"] == "FORBIDDEN"
    assert ("x-amzn-ErrorType", "ForbiddenException") in forbidden.headers
    invalid = apigw.gateway_response(api, "BAD_REQUEST_BODY", "Invalid request body")
    assert invalid.status == 400 and json.loads(invalid.body)["code"] == "INVALID_REQUEST_BODY"
    failure = apigw.gateway_response(api, "INTEGRATION_FAILURE", "Internal server error")
    assert failure.status == 502  # DEFAULT_5XX's template, API Gateway's status
    assert json.loads(failure.body) == {"error": "Internal server error", "code": "INTERNAL_ERROR"}


def test_gateway_responses_without_customisation_use_the_project_format():
    no_route = apigw.gateway_response(
        API, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", detail="no route for X"
    )
    assert no_route.status == 404
    assert json.loads(no_route.body) == {"error": "no route for X", "code": "ROUTE_NOT_FOUND"}
    key = apigw.gateway_response(API, "INVALID_API_KEY", "Forbidden", detail="missing key")
    assert key.status == 403 and json.loads(key.body)["code"] == "FORBIDDEN"


def test_gateway_response_templates():
    api = ApiSpec(
        "Api",
        "prod",
        gateway_responses={
            "INVALID_API_KEY": {
                "StatusCode": "401",
                "ResponseTemplates": {
                    "application/json": '{"m": $context.error.messageString, '
                    '"id": "$context.requestId"}'
                },
                "ResponseParameters": {"Headers": {"WWW-Authenticate": "'ApiKey'"}},
            }
        },
    )
    answer = apigw.gateway_response(api, "INVALID_API_KEY", 'Forbid "this"', request_id="r1")
    assert answer.status == 401
    assert json.loads(answer.body) == {"m": 'Forbid "this"', "id": "r1"}
    assert ("WWW-Authenticate", "ApiKey") in answer.headers


def test_request_validation_with_the_project_model(project):
    table, apis = project
    predict = table.match("POST", "/predict").route
    api = apis[predict.api_id]
    assert apigw.body_errors(api, predict, "application/json", b'{"instances": [[1]]}') is None
    assert apigw.body_errors(api, predict, None, b'{"images": []}') is None
    assert apigw.body_errors(api, predict, "application/json", b'{"foo": 1}')
    assert apigw.body_errors(api, predict, "application/json", b'{"instances": 5}')
    assert "Invalid JSON" in apigw.body_errors(api, predict, "application/json", b"{nope")
    assert apigw.body_errors(api, predict, "application/json", b"")  # Required body
    assert apigw.body_errors(api, predict, "text/plain", b"{nope") is None  # not validated
    health = table.match("GET", "/health").route
    assert apigw.body_errors(api, health, "application/json", b"{nope") is None


def test_media_type_helpers():
    assert apigw.is_binary_type("image/png; q=1", ("image/*",))
    assert apigw.is_binary_type("anything/else", ("*/*",))
    assert not apigw.is_binary_type("application/json", ("image/png",))
    assert not apigw.is_binary_type(None, ("*/*",))
    assert apigw.accepts(None, "image/png") and apigw.accepts("*/*", "image/png")
    assert not apigw.accepts("image/png;q=0, application/json", "image/png")
    assert apigw.canonical_header("x-api-key") == "X-Api-Key"
