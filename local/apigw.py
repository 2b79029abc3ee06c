"""API Gateway (REST API, Lambda proxy integration) as pure functions: no server here.

- ``RouteTable.match``: which event of the template serves a request. API Gateway
  resolves on the (resource, method) pair, as measured on the real service (localstack
  PR 9208, ministack PR 1423): among the resources that match the path *and* declare the
  method (or ANY), the most specific wins: at the first segment where they differ, a
  literal beats ``{param}``, which beats a greedy ``{proxy+}`` (which needs at least one
  segment, so ``/{proxy+}`` does not match ``/``); on one resource, its own method beats
  ANY. Nothing matching: API Gateway's MISSING_AUTHENTICATION_TOKEN response.
- ``gateway_response``: API Gateway's own answers (no route, API key, request
  validation, body too large, integration failure) rendered from the API's
  ``GatewayResponses`` as the deployed API would (status, template with ``$context``
  variables, headers), falling back to DEFAULT_4XX/5XX; without any, the project's
  ``{"error", "code"}`` document with API Gateway's status (404 for no route).
- ``body_errors``: the method's request validator (``RequestModel`` with
  ``ValidateBody``): the body checked against the API's JSON-schema model (draft 4).
- ``build_event``: the proxy event API Gateway sends (the shape of ``sam local
  generate-event apigateway aws-proxy``; built after samcli/local/apigw/event_constructor.py
  but with what the real service does where the SAM CLI differs: a fresh requestId per
  request, requestContext.path with the stage, identity.apiKey, X-Forwarded-For).
- ``map_response``: the function's answer -> (status, headers, body), after
  ``LocalApigwService._parse_v1_payload_format_lambda_output``: statusCode defaults to 200,
  ``headers`` and ``multiValueHeaders`` merge, unknown keys are a malformed response (502),
  ``Content-Type`` defaults to application/json, a base64 body is decoded when its type is
  one of the API's binary media types and the client accepts it.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from local.template import ACCOUNT_ID, ApiSpec, RouteSpec

API_ID = "1234567890"  # samcli's placeholder API id
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit for REST APIs
ALLOWED_RESPONSE_KEYS = {
    "statusCode",
    "body",
    "headers",
    "multiValueHeaders",
    "isBase64Encoded",
    "base64Encoded",
    "cookies",
}
# never copied from the function's answer: the HTTP server frames the body itself
HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}

LITERAL, PARAMETER, GREEDY = 0, 1, 2  # lower is more specific


class MalformedResponse(Exception):
    """What API Gateway logs as 'Malformed Lambda proxy response' (and answers 502)."""


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _kind(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return GREEDY
    if segment.startswith("{") and segment.endswith("}"):
        return PARAMETER
    return LITERAL


@dataclass
class Resource:
    path: str
    methods: dict[str, RouteSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.segments = _segments(self.path)
        self.kinds = tuple(_kind(s) for s in self.segments)

    def bind(self, request_segments: list[str]) -> dict[str, str] | None:
        """Path parameters if this resource matches the request path, else None."""
        params: dict[str, str] = {}
        for i, (segment, kind) in enumerate(zip(self.segments, self.kinds, strict=True)):
            if i >= len(request_segments):
                return None  # a greedy variable, too, needs at least one segment
            if kind == GREEDY:
                params[segment[1:-2]] = "/".join(request_segments[i:])
                return params
            if kind == PARAMETER:
                params[segment[1:-1]] = request_segments[i]
            elif segment != request_segments[i]:
                return None
        return params if len(request_segments) == len(self.segments) else None


@dataclass(frozen=True)
class Match:
    resource: str  # the matched resource path, e.g. /v1/models/{proxy+}
    route: RouteSpec
    path_parameters: dict[str, str]


class RouteTable:
    """The resources and methods of one REST API (the routes of one AWS::Serverless::Api)."""

    def __init__(self, routes: list[RouteSpec]):
        self.routes = list(routes)
        self.resources: dict[str, Resource] = {}
        for route in self.routes:
            resource = self.resources.setdefault(route.path, Resource(route.path))
            resource.methods[route.method] = route

    def match(self, method: str, path: str) -> Match | None:
        """The most specific resource that matches the path and serves the method."""
        method = method.upper()
        request_segments = _segments(path)
        best = None
        for resource in self.resources.values():
            route = resource.methods.get(method) or resource.methods.get("ANY")
            if route is None:
                continue
            params = resource.bind(request_segments)
            if params is None:
                continue
            rank = (resource.kinds, route.method == "ANY")
            if best is None or rank < best[0]:
                best = (rank, Match(resource.path, route, params))
        return best[1] if best else None


# -- request -> event ----------------------------------------------------------------------
@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # percent-decoded, as API Gateway puts it in the event
    query_string: str  # raw
    headers: list[tuple[str, str]]  # in order, repeated names kept
    body: bytes
    client_ip: str = "127.0.0.1"
    scheme: str = "https"
    port: int = 443
    protocol: str = "HTTP/1.1"


def canonical_header(name: str) -> str:
    """HTTP/1.1 servers hand header names over in lower case; API Gateway passes the
    client's spelling. Like `sam local` (werkzeug), use the usual capitalisation."""
    return "-".join(part.capitalize() for part in name.split("-"))


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    values = [v for k, v in headers if k.lower() == name]
    return values[-1] if values else None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_binary_type(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    """Content-Type against the API's binaryMediaTypes (wildcards like image/* and */*)."""
    kind = media_type(content_type)
    if not kind:
        return False
    main, _, sub = kind.partition("/")
    for pattern in binary_media_types:
        p_main, _, p_sub = pattern.lower().partition("/")
        if p_main in ("*", main) and p_sub in ("*", sub):
            return True
    return False


def accepts(accept: str | None, content_type: str) -> bool:
    """Whether an Accept header allows a media type (no header: anything)."""
    if not accept:
        return True
    main, _, sub = media_type(content_type).partition("/")
    for item in accept.split(","):
        kind, *params = [p.strip() for p in item.split(";")]
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        a_main, _, a_sub = kind.lower().partition("/")
        if a_main in ("*", main) and a_sub in ("*", sub):
            return True
    return False


def new_trace_header() -> str:
    """An X-Ray trace header as API Gateway starts one (Root=1-<epoch hex>-<96 bits>)."""
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


def build_event(
    request: HttpRequest,
    match: Match,
    api: ApiSpec,
    *,
    request_id: str | None = None,
    api_key: str | None = None,
    now: float | None = None,
) -> dict:
    """The Lambda proxy integration event for one request (REST API, payload 1.0)."""
    now = time.time() if now is None else now
    route = match.route

    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        key = canonical_header(name)
        headers[key] = value  # API Gateway: the last value wins in `headers`
        multi_headers.setdefault(key, []).append(value)
    forwarded = headers.get("X-Forwarded-For")
    added = {
        "X-Forwarded-For": f"{forwarded}, {request.client_ip}" if forwarded else request.client_ip,
        "X-Forwarded-Port": str(request.port),
        "X-Forwarded-Proto": request.scheme,
    }
    if "X-Amzn-Trace-Id" not in headers:
        added["X-Amzn-Trace-Id"] = new_trace_header()
    for key, value in added.items():
        headers[key] = value
        multi_headers[key] = [value]

    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[key] = value
        multi_query.setdefault(key, []).append(value)

    binary = is_binary_type(headers.get("Content-Type"), api.binary_media_types)
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode()
    else:
        # API Gateway passes text as text; undecodable bytes become U+FFFD here, so the
        # function sees a body it can reject instead of the gateway failing
        body = request.body.decode("utf-8", errors="replace")

    stamp = datetime.fromtimestamp(now, UTC)
    identity = {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "accessKey": None,
        "sourceIp": request.client_ip,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": headers.get("User-Agent"),
        "user": None,
        "principalOrgId": None,
        "clientCert": None,
    }
    if route.api_key_required and api_key is not None:
        identity["apiKey"] = api_key
        identity["apiKeyId"] = "local-api-key"
    host = headers.get("Host", f"127.0.0.1:{request.port}")
    return {
        "resource": match.resource,
        "path": request.path,
        "httpMethod": request.method.upper(),
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": dict(api.stage_variables) or None,
        "requestContext": {
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, match.resource).hex[:6],
            "resourcePath": match.resource,
            "httpMethod": request.method.upper(),
            "extendedRequestId": base64.urlsafe_b64encode(uuid.uuid4().bytes[:9]).decode(),
            "requestTime": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{api.stage_name}{request.path}" if api.stage_name else request.path,
            "accountId": ACCOUNT_ID,
            "protocol": request.protocol,
            "stage": api.stage_name,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id or str(uuid.uuid4()),
            "identity": identity,
            "domainName": host.split(":", 1)[0],
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


# -- function answer -> HTTP response ------------------------------------------------------
def _is_base64_flag(payload: dict) -> bool:
    """REST APIs read base64Encoded first, then isBase64Encoded (SAM's get_base_64_encoded)."""
    value = payload.get("base64Encoded", payload.get("isBase64Encoded", False))
    if value is None:
        return False
    if isinstance(value, str) and value in ("true", "True", "false", "False"):
        return value in ("true", "True")
    if not isinstance(value, bool):
        raise MalformedResponse(f"isBase64Encoded must be a boolean, got {value!r}")
    return value


def map_response(
    payload: object, api: ApiSpec, accept: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) from the function's proxy response; MalformedResponse if
    API Gateway would refuse it."""
    if not isinstance(payload, dict):
        raise MalformedResponse(
            f"the function returned {type(payload).__name__}, "
            "not an object with statusCode, headers, body"
        )
    unknown = set(payload) - ALLOWED_RESPONSE_KEYS
    if unknown:
        raise MalformedResponse(f"unknown keys in the function's response: {sorted(unknown)}")
    try:
        status = int(payload.get("statusCode") or 200)
    except (TypeError, ValueError):
        raise MalformedResponse(
            f"statusCode must be an integer, got {payload.get('statusCode')!r}"
        ) from None
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status} is not an HTTP status")

    headers: list[tuple[str, str]] = []
    multi = payload.get("multiValueHeaders") or {}
    single = payload.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    for name, values in multi.items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name), str(value)))
    for name, value in single.items():  # a pair given in both appears once
        if str(value) not in [str(v) for v in (multi.get(name) or [])]:
            headers.append((str(name), str(value)))
    headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
    content_type = header_value(headers, "Content-Type")
    if content_type is None:
        content_type = "application/json"
        headers.append(("Content-Type", content_type))

    body = payload.get("body")
    text = "" if body is None else body if isinstance(body, str) else str(body)
    if (
        _is_base64_flag(payload)
        and is_binary_type(content_type, api.binary_media_types)
        and accepts(accept, content_type)
    ):
        try:
            return status, headers, base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponse("isBase64Encoded is true but the body is not base64") from None
    return status, headers, text.encode()


def error_body(message: str, code: str) -> dict:
    """The project's error document (GUIDE section 3)."""
    return {"error": message, "code": code}


# -- API Gateway's own answers -------------------------------------------------------------
# response type -> (API Gateway's default status, x-amzn-ErrorType, the project's code when
# the template customises nothing)
GATEWAY_RESPONSE_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException", "FORBIDDEN"),
    "INVALID_API_KEY": (403, "ForbiddenException", "FORBIDDEN"),
    "BAD_REQUEST_BODY": (400, "BadRequestException", "INVALID_REQUEST_BODY"),
    "REQUEST_TOO_LARGE": (413, "RequestTooLargeException", "PAYLOAD_TOO_LARGE"),
    "INTEGRATION_FAILURE": (502, "InternalServerErrorException", "INTERNAL_ERROR"),
}
NO_ROUTE_STATUS = 404  # without a customised response: the project's 404 ROUTE_NOT_FOUND


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def render_template(text: str, context: dict[str, str]) -> str:
    """$context.x.y substitution, all that gateway response templates support (no VTL)."""
    return re.sub(
        r"\$context\.([A-Za-z0-9_.]*[A-Za-z0-9_])",
        lambda m: context.get(m.group(1), ""),
        text,
    )


def gateway_response(
    api: ApiSpec,
    response_type: str,
    message: str,
    *,
    route_path: str | None = None,
    detail: str = "",
    request_id: str = "",
    stage: str = "",
) -> GatewayResponse:
    """API Gateway's answer of a given type, as the template customises it (see module doc).

    ``message`` is $context.error.message (API Gateway's own wording); ``detail`` is the
    fuller sentence used when the template customises nothing.
    """
    import json

    status, error_type, code = GATEWAY_RESPONSE_TYPES[response_type]
    if response_type == "MISSING_AUTHENTICATION_TOKEN":
        code = "ROUTE_NOT_FOUND"
    specific = api.gateway_responses.get(response_type)
    default_status = status
    fallback = api.gateway_responses.get("DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX")
    config = specific or fallback
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)]
    if config is None:
        if response_type == "MISSING_AUTHENTICATION_TOKEN":
            status = NO_ROUTE_STATUS
        body = json.dumps(error_body(detail or message, code)).encode()
        return GatewayResponse(status, headers, body)
    if specific and specific.get("StatusCode") is not None:
        status = int(specific["StatusCode"])
    else:
        status = default_status
    templates = config.get("ResponseTemplates") or {}
    text = templates.get("application/json") or next(iter(templates.values()), None)
    context = {
        "error.message": message,
        "error.messageString": json.dumps(message),
        "error.responseType": response_type,
        "error.validationErrorString": detail,
        "requestId": request_id,
        "stage": stage,
        "resourcePath": route_path or "",
    }
    if text is None:
        body = json.dumps({"message": message}).encode()
    else:
        body = render_template(str(text), context).encode()
    for name, value in ((config.get("ResponseParameters") or {}).get("Headers") or {}).items():
        headers.append((str(name), str(value).strip("'")))
    return GatewayResponse(status, headers, body)


def body_errors(
    api: ApiSpec, route: RouteSpec, content_type: str | None, body: bytes
) -> str | None:
    """Why the body fails the method's request validator, or None if it passes.

    Only JSON bodies are checked (no Content-Type counts as application/json, as API
    Gateway assumes); a model missing from the API fails loudly, as a deployment would.
    """
    import json

    if route.request_model is None:
        return None
    kind = media_type(content_type) or "application/json"
    if kind != "application/json":
        return None
    schema = api.models.get(route.request_model)
    if schema is None:
        raise KeyError(f"RequestModel {route.request_model!r} is not in the API's Models")
    try:
        document = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError) as exc:
        return f"[Invalid JSON: {exc}]"
    from jsonschema import Draft4Validator

    messages = sorted(error.message for error in Draft4Validator(schema).iter_errors(document))
    return f"[{', '.join(messages)}]" if messages else None


_SAFE = re.compile(r"[^\x20-\x7e]")


def printable(text: str) -> str:
    """A request path as it may be echoed in a message."""
    return _SAFE.sub("?", text)[:200]
