"""local.api in process: SAM CLI's LocalApigwService with what API Gateway adds, driven by
Flask's test client, the function replaced by a runner that records the events it gets.
Also local.events (the one event builder) and the TLS certificate."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from local.api import LocalApi, fill_api_key, make_certificates, render
from local.events import api_event
from local.function import FunctionFailed, InvokeResult
from local.template import Template

ROOT = Path(__file__).resolve().parents[3]
KEY = "secret-key"
OK = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": 1}'}


class Runner:
    """sam's runner interface: records each event, answers ``self.answer``."""

    size = 1

    def __init__(self):
        self.events: list[dict] = []
        self.answer: dict | Exception = OK

    def is_debugging(self) -> bool:
        return False

    def invoke(self, name, event, *, stdout, **_):
        self.events.append(json.loads(event))
        if isinstance(self.answer, Exception):
            raise self.answer
        stdout.write_str(json.dumps(self.answer))


def make_client(*parameters: str, template: Path = ROOT / "template.yaml"):
    runner = Runner()
    overrides = dict(p.split("=", 1) for p in ("BucketName=b", *parameters))
    service = LocalApi(Template(template, overrides), runner, KEY, 3000)
    service.create()
    return service._app.test_client(), runner


@pytest.fixture(scope="module")
def api():
    return make_client()


@pytest.fixture
def client(api):
    client, runner = api
    runner.events.clear()
    runner.answer = OK
    return client


@pytest.fixture
def runner(api):
    return api[1]


def send(client, method: str, path: str, key: str | None = KEY, **kwargs):
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["x-api-key"] = key
    return client.open(path, method=method, headers=headers, **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "resource", "params"),
    [
        ("POST", "/predict", "/predict", None),
        ("GET", "/predict", "/predict", None),
        ("GET", "/health", "/health", None),
        ("POST", "/v1/models/mnist:predict", "/v1/models/{proxy+}", {"proxy": "mnist:predict"}),
        ("GET", "/v1/models/m/metadata", "/v1/models/{proxy+}", {"proxy": "m/metadata"}),
        # parents of a path exist in API Gateway without methods: the request falls through
        ("GET", "/v1/models", "/{proxy+}", {"proxy": "v1/models"}),
        ("DELETE", "/no/such/thing", "/{proxy+}", {"proxy": "no/such/thing"}),
        ("GET", "/", "/", None),  # {proxy+} needs at least one segment
    ],
)
def test_routes_resolve_like_api_gateway(client, runner, method, path, resource, params):
    body = '{"instances": [[1]]}' if method == "POST" else None
    answer = send(client, method, path, data=body, content_type="application/json")
    assert answer.status_code == 200, answer.text
    event = runner.events[-1]
    assert (event["resource"], event["path"], event["httpMethod"]) == (resource, path, method)
    assert event["pathParameters"] == params
    assert event["requestContext"]["stage"] == "prod"


def test_api_key_per_resource_and_method(client, runner):
    """sam merges GET /health (open) and ANY /health (key) into one route: the key is still
    required for every method but GET, as API Gateway requires it."""
    for key in (None, "wrong", ""):
        answer = send(client, "POST", "/predict", key=key, json={"instances": [[1]]})
        assert answer.status_code == 403
        assert answer.json["code"] == "FORBIDDEN" and "x-api-key" in answer.json["error"]
        assert answer.headers["x-amzn-ErrorType"] == "ForbiddenException"
        # where the local key is, not the aws CLI command that reads a deployed one
        message = answer.json["error"]
        assert "printed when it started" in message and "API_KEY=" in message
        assert "aws " not in message and message.startswith("wrong" if key else "missing")
    assert send(client, "DELETE", "/health", key=None).status_code == 403
    assert send(client, "GET", "/v1/models/mnist", key=None).status_code == 403
    assert runner.events == []
    assert send(client, "GET", "/health", key=None).status_code == 200
    assert send(client, "GET", "/health", key="wrong").status_code == 200  # not checked there
    assert send(client, "POST", "/predict", json={"images": []}).status_code == 200


FIELD = '<input type="password" id="api-key" autocomplete="off">'


def html(body: str) -> dict:
    return {"statusCode": 200, "headers": {"Content-Type": "text/html"}, "body": body}


def test_the_page_is_open_and_gets_this_apis_key(client, runner):
    runner.answer = html(f"<p>{FIELD}</p>")
    answer = send(client, "GET", "/", key=None)
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    filled = f'<p><input type="password" id="api-key" value="{KEY}" autocomplete="off"></p>'
    assert answer.text == filled
    assert int(answer.headers["Content-Length"]) == len(filled.encode())
    assert send(client, "POST", "/", key=None).status_code == 403  # other methods need the key
    assert send(client, "POST", "/", data="{}").text == f"<p>{FIELD}</p>"  # not GET: untouched
    assert send(client, "GET", "/health").text == f"<p>{FIELD}</p>"  # another path: untouched
    runner.answer = {**OK, "body": json.dumps({"field": FIELD})}
    assert send(client, "GET", "/").json == {"field": FIELD}  # not HTML: untouched


def test_the_key_is_escaped_into_the_page():
    assert fill_api_key(FIELD, 'a"b<&') == FIELD.replace(
        'id="api-key"', 'id="api-key" value="a&quot;b&lt;&amp;"'
    )
    assert fill_api_key('<input id="other">', "k") == '<input id="other">'
    assert fill_api_key(FIELD + FIELD, "k").count('value="k"') == 1


def test_request_model_validates_post_predict_only(client, runner):
    for body in ('{"foo": 1}', '{"instances": 5}', "{nope", ""):
        answer = send(client, "POST", "/predict", data=body, content_type="application/json")
        assert answer.status_code == 400, body
        assert answer.json["code"] == "INVALID_REQUEST_BODY"
        assert answer.headers["x-amzn-ErrorType"] == "BadRequestException"
    assert runner.events == []  # API Gateway answered; the function never ran
    # only JSON is validated; other methods of /predict reach the function (its 405)
    text = send(client, "POST", "/predict", data="{nope", content_type="text/plain")
    assert text.status_code == 200
    assert send(client, "PUT", "/predict", data='{"foo": 1}').status_code == 200
    assert len(runner.events) == 2


def test_iam_mode_needs_a_signature_except_on_health():
    client, runner = make_client("ApiAuthMode=IAM")
    answer = send(client, "POST", "/predict", key=None, json={"instances": [[1]]})
    assert answer.status_code == 403 and answer.json["code"] == "FORBIDDEN"
    assert "Signature Version 4" in answer.json["error"]
    assert send(client, "GET", "/health", key=None).status_code == 200
    runner.events.clear()
    unsigned = {"Authorization": "AWS4-HMAC-SHA256 Credential=x"}
    answer = send(client, "GET", "/v1/models/m", key=None, headers=unsigned)
    assert answer.status_code == 403 and runner.events == []
    assert (
        send(client, "GET", "/v1/models/m", key=None, headers=signed("/v1/models/m")).status_code
        == 200
    )
    assert len(runner.events) == 1


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "local-secret"}


def signed(path: str, method: str = "GET", body: bytes = b"", secret: str = "local-secret"):
    """The SigV4 headers of a request to the test client's host (what examples.client sends)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=f"http://localhost{path}", data=body)
    SigV4Auth(Credentials("AKIDLOCAL", secret), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


@pytest.fixture(autouse=True)
def local_credentials(monkeypatch):
    """The shell's AWS credentials, which the local API checks signatures against."""
    for name, value in {**CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_a_signature_of_other_credentials_is_refused():
    client, runner = make_client("ApiAuthMode=IAM")
    forged = signed("/predict", "POST", b"{}", secret="another-secret")
    answer = client.post("/predict", data=b"{}", headers=forged, content_type="application/json")
    assert answer.status_code == 403 and runner.events == []


def test_the_http_api_sends_payload_format_2_and_answers_like_an_http_api():
    """ApiType http: the HTTP API's routes, events in payload format 2.0, and the HTTP API's
    own {"message": ...} where it answers itself (no gateway responses)."""
    client, runner = make_client("ApiType=http", "ApiAuthMode=IAM")
    runner.answer = {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": "{}",
    }
    assert client.get("/health").status_code == 200  # open
    event = runner.events[-1]
    assert event["version"] == "2.0" and event["rawPath"] == "/health"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["requestId"] and event["requestContext"]["timeEpoch"]
    refused = client.post("/predict", json={"instances": [[1]]})
    assert refused.status_code == 403 and refused.json == {"message": "Forbidden"}
    body = b'{"instances": [[1]]}'
    headers = signed("/predict", "POST", body)
    answer = client.post("/predict", data=body, headers=headers, content_type="application/json")
    assert answer.status_code == 200 and runner.events[-1]["routeKey"] == "POST /predict"
    # no request validator on an HTTP API: the function sees (and answers) a bad body itself
    bad = b'{"foo": 1}'
    headers = signed("/predict", "POST", bad)
    assert (
        client.post(
            "/predict", data=bad, headers=headers, content_type="application/json"
        ).status_code
        == 200
    )


def test_the_http_api_with_jwt_needs_a_token_on_its_protected_routes():
    client, runner = make_client(
        "ApiType=http",
        "ApiAuthMode=IAM",
        "HttpApiJwtIssuer=https://issuer.example.com",
        "HttpApiJwtAudience=client-1",
    )
    assert client.post("/predict", json={"instances": [[1]]}).status_code == 403
    token = {"Authorization": "Bearer eyJ.local.token"}
    assert client.post("/predict", json={"instances": [[1]]}, headers=token).status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_api_gateways_own_answers_come_from_the_templates_gateway_responses(client, runner):
    body = b"{" + b" " * (10 << 20) + b"}"
    too_large = send(client, "POST", "/predict", data=body, content_type="application/json")
    assert too_large.status_code == 413 and too_large.json["code"] == "PAYLOAD_TOO_LARGE"
    runner.answer = FunctionFailed(InvokeResult("r1", False, {"errorType": "ValueError"}, 1, True))
    failed = send(client, "GET", "/v1/models/m")
    assert failed.status_code == 502
    assert failed.json == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
    for malformed in ({"statusCode": 200, "extra": 1}, {"statusCode": "abc"}, ["a list"]):
        runner.answer = malformed
        answer = send(client, "GET", "/v1/models/m")
        assert answer.status_code == 502 and answer.json["code"] == "INTERNAL_ERROR", malformed


SMALL = """\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      BucketName: {Type: String, Default: ""}
    Resources:
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn
          Handler: app.handler
          Runtime: python3.13
          Events:
            Predict: {Type: Api, Properties: {Path: /predict, Method: POST}}
"""


@pytest.fixture
def small(tmp_path) -> Path:
    """A template with one route, no catch-all, on the implicit API."""
    (tmp_path / "fn").mkdir()
    (tmp_path / "template.yaml").write_text(textwrap.dedent(SMALL))
    return tmp_path / "template.yaml"


def test_no_route_and_no_method_are_api_gateways_404(small):
    client, runner = make_client(template=small)
    for method, path in (("GET", "/nope"), ("GET", "/predict")):
        answer = send(client, method, path)
        assert answer.status_code == 404 and answer.json["code"] == "ROUTE_NOT_FOUND"
        assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert send(client, "POST", "/predict", data="{}").status_code == 200
    assert runner.events[0]["requestContext"]["stage"] == "Prod"  # the implicit API's


def test_what_sam_gets_wrong_is_fixed(client, runner):
    """sam computes the requestId once, at import (every request, and every log line of the
    function, would carry the same one), and answers 502 to a body that is not UTF-8."""
    answers = [send(client, "GET", "/health", key=None) for _ in range(3)]
    ids = [event["requestContext"]["requestId"] for event in runner.events]
    assert len(set(ids)) == 3
    assert ids == [answer.headers["x-amzn-RequestId"] for answer in answers]
    times = [event["requestContext"]["requestTimeEpoch"] for event in runner.events]
    assert times == sorted(times) and times[0] > 1_700_000_000_000
    body = b'{"a": "\xff"}'
    answer = send(
        client, "POST", "/v1/models/m:predict", data=body, content_type="application/json"
    )
    assert answer.status_code == 200
    assert runner.events[-1]["body"] == '{"a": "\ufffd"}'


def test_gateway_response_rendering():
    api = {
        "GatewayResponses": {
            "INVALID_API_KEY": {
                "StatusCode": "401",
                "ResponseTemplates": {
                    "application/json": '{"m": $context.error.messageString, '
                    '"id": "$context.requestId"}'
                },
                "ResponseParameters": {"Headers": {"WWW-Authenticate": "'ApiKey'"}},
            },
            "DEFAULT_5XX": {
                "ResponseTemplates": {"application/json": '{"e": "$context.error.message"}'}
            },
        }
    }
    answer = render(api, "INVALID_API_KEY", "detail", "r1", "prod")
    assert answer.status_code == 401 and json.loads(answer.data) == {"m": "Forbidden", "id": "r1"}
    assert answer.headers["WWW-Authenticate"] == "ApiKey"
    failure = render(api, "INTEGRATION_FAILURE", "detail", "r1", "prod")
    assert failure.status_code == 502
    assert json.loads(failure.data) == {"e": "Internal server error"}
    plain = render({}, "MISSING_AUTHENTICATION_TOKEN", "no route for GET /x", "r1", "prod")
    assert plain.status_code == 404
    assert json.loads(plain.data) == {"error": "no route for GET /x", "code": "ROUTE_NOT_FOUND"}


# -- local.events: the same builder, for events/ and the benchmarks -------------------------
@pytest.fixture(scope="module")
def sam_event(tmp_path_factory):
    """What `sam local generate-event apigateway aws-proxy` prints."""
    sam = shutil.which("sam", path=str(Path(sys.executable).parent))
    out = subprocess.run(
        [sam, "local", "generate-event", "apigateway", "aws-proxy"]
        + ["--method", "POST", "--path", "predict", "--body", "{}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=tmp_path_factory.mktemp("sam"),
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    ).stdout
    return json.loads(out[out.index("{") :])


def test_api_event_has_the_shape_sam_generate_event_prints(sam_event):
    event = api_event("POST", "/predict", "{}", headers={"Content-Type": "application/json"})
    assert set(event) == set(sam_event)
    assert set(event["requestContext"]) >= set(sam_event["requestContext"])
    identity = event["requestContext"]["identity"]
    assert set(identity) >= set(sam_event["requestContext"]["identity"])


def test_api_event_is_the_local_apis_and_deterministic_when_asked(small):
    path = "/v1/models/mnist:predict?a=1&a=2"
    kwargs = {"headers": {"Content-Type": "application/json"}, "request_id": "rid"}
    kwargs["now"] = 1_764_300_000.5
    event = api_event("POST", path, '{"instances": []}', **kwargs)
    assert event == api_event("POST", path, '{"instances": []}', **kwargs)
    assert event["resource"] == "/v1/models/{proxy+}"
    assert event["pathParameters"] == {"proxy": "mnist:predict"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    context = event["requestContext"]
    assert (context["requestId"], context["requestTimeEpoch"]) == ("rid", 1_764_300_000_500)
    assert context["requestTime"] == "28/Nov/2025:03:20:00 +0000"
    encoded = api_event("POST", "/predict", "{}", base64_body=True)
    assert encoded["isBase64Encoded"] is True and encoded["body"] == "e30="
    with pytest.raises(ValueError, match="no route"):
        api_event("GET", "/predict", template=small)


def test_the_event_reads_right_through_powertools():
    """The function reads events with Powertools' data class: check it agrees."""
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    event = api_event("PUT", "/a/b?q=2", '{"instances": []}', headers={"X-Api-Key": "k"})
    parsed = APIGatewayProxyEvent(event)
    assert (parsed.http_method, parsed.path, parsed.resource) == ("PUT", "/a/b", "/{proxy+}")
    assert parsed.json_body == {"instances": []}
    assert parsed.headers.get("x-api-key") == "k"
    assert parsed.get_query_string_value("q") == "2"


# -- TLS ------------------------------------------------------------------------------------
def wrap(context: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)


def handshake(server: ssl.SSLSocket) -> None:
    try:
        server.do_handshake()
    except (ssl.SSLError, OSError):
        pass  # the client refused the certificate: what the test checks on its side


def test_certificate_passes_strict_verification(tmp_path):
    """The server certificate verifies for 127.0.0.1 and localhost against ca.pem, with
    VERIFY_X509_STRICT (Python 3.13's default) on: a real handshake over a socket pair."""
    ca, server_pem = make_certificates(tmp_path)
    assert server_pem.stat().st_mode & 0o777 == 0o600
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_pem)
    for name in ("127.0.0.1", "localhost"):
        client_context = ssl.create_default_context(cafile=str(ca))
        client_context.verify_flags |= ssl.VERIFY_X509_STRICT
        left, right = socket.socketpair()
        with wrap(server_context, left) as server:
            thread = threading.Thread(target=handshake, args=(server,))
            thread.start()
            with client_context.wrap_socket(right, server_hostname=name) as tls:
                assert tls.getpeercert()["subjectAltName"]
            thread.join(10)
    client_context = ssl.create_default_context(cafile=str(ca))
    left, right = socket.socketpair()
    with wrap(server_context, left) as server:
        thread = threading.Thread(target=handshake, args=(server,))
        thread.start()
        with pytest.raises(ssl.SSLCertVerificationError):
            client_context.wrap_socket(right, server_hostname="example.com")
        thread.join(10)
