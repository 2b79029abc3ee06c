"""What this function answers, and the one place an event becomes the request the routes see.

Two payload formats, each an `EventFormat` in `FORMATS` (a new kind of event is one more entry):

- API Gateway REST API proxy events, payload format 1.0 (`httpMethod`, `path`,
  `multiValueHeaders`): the routes read them as they are, and the answer has the REST proxy
  shape (router.proxy_response);
- HTTP API (and function URL) events, payload format 2.0 (`version` "2.0", `rawPath`,
  `requestContext.http.method`, one string per header): turned into the 1.0 fields the routes
  read (`request`), and answered in format 2.0 (`headers` of strings; `multiValueHeaders`
  is not part of it). A named stage's segment leaves the path (an HTTP API puts it in
  `rawPath`, a REST API does not); `$default` has none.

Anything else a caller can send to Lambda (an empty or malformed event, an S3 or SQS
notification, a test event from the console) gets a proxy-shaped 400 UNSUPPORTED_EVENT that
says what was expected, never an exception: a caller's mistake is not a function error (the
FunctionErrors alarm), and nothing of the code's internals is returned.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from errors import ApiError
from router import JSON, Response

EXPECTED = (
    "an API Gateway proxy event: REST API (payload format 1.0) or HTTP API / function URL "
    "(payload format 2.0)"
)
_STRING_MAPS = ("headers", "queryStringParameters", "pathParameters", "stageVariables")
_LIST_MAPS = ("multiValueHeaders", "multiValueQueryStringParameters")


def _describe(event: Any) -> str | None:
    """What kind of foreign event this is, when it can be told."""
    if not isinstance(event, dict):
        kind = {list: "a JSON array", str: "a string", type(None): "null"}.get(type(event))
        return kind or ("a boolean" if isinstance(event, bool) else "a number")
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource") or records[0].get("EventSource") or "a service"
        return f"an event from {str(source)[:40]}"
    if "detail-type" in event:
        return "an EventBridge event"
    return None


def _all_strings(values) -> bool:
    """Every key of a dict (and value: a dict's items are checked both ways), or every item."""
    if isinstance(values, dict):
        return all(map(isinstance, values, repeat(str))) and all(
            map(isinstance, values.values(), repeat(str))
        )
    return all(map(isinstance, values, repeat(str)))  # C-speed: this runs on every request


def _all_string_lists(values: dict) -> bool:
    """Every key a string and every value a list of strings, in three C-speed passes (not a
    Python-level look at each header: multiValueHeaders is on every request)."""
    lists = values.values()
    return (
        _all_strings(values.keys())
        and all(map(isinstance, lists, repeat(list)))
        and _all_strings(chain.from_iterable(lists))
    )


def _common_problem(event: dict[str, Any]) -> str | None:
    """What both payload formats share: string maps, the body and its base64 flag, the
    request context."""
    for key in _STRING_MAPS:
        value = event.get(key)
        if value is not None and not (isinstance(value, dict) and _all_strings(value)):
            return f"the event's '{key}' must be an object of strings or null"
    if event.get("body") is not None and not isinstance(event["body"], str):
        return "the event's 'body' must be a string or null"
    if not isinstance(event.get("isBase64Encoded", False), bool | None):
        return "the event's 'isBase64Encoded' must be a boolean"
    if not isinstance(event.get("requestContext", {}), dict | None):
        return "the event's 'requestContext' must be an object"
    return None


# -- payload format 1.0 (REST API) ---------------------------------------------------------


def _is_v1(event: dict[str, Any]) -> bool:
    return "httpMethod" in event or "path" in event


def _v1_problem(event: dict[str, Any]) -> str | None:
    method, path = event.get("httpMethod"), event.get("path")
    if not isinstance(method, str) or not method.strip():
        return f"the event has no 'httpMethod'; this function answers {EXPECTED}"
    if not isinstance(path, str) or not path.startswith("/"):
        return f"the event's 'path' must be a string starting with '/'; expected {EXPECTED}"
    for key in _LIST_MAPS:
        value = event.get(key)
        if value is not None and not (isinstance(value, dict) and _all_string_lists(value)):
            return f"the event's '{key}' must be an object of string arrays or null"
    return _common_problem(event)


def _as_is(value: dict[str, Any]) -> dict[str, Any]:
    return value


# -- payload format 2.0 (HTTP API, function URL) -------------------------------------------


def _is_v2(event: dict[str, Any]) -> bool:
    return event.get("version") == "2.0" or "rawPath" in event or "routeKey" in event


def _v2_problem(event: dict[str, Any]) -> str | None:
    if event.get("version") != "2.0":
        return f"the event's 'version' must be \"2.0\" (payload format 2.0); expected {EXPECTED}"
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    method = http.get("method") if isinstance(http, dict) else None
    if not isinstance(method, str) or not method.strip():
        return f"the event has no 'requestContext.http.method'; this function answers {EXPECTED}"
    path = event.get("rawPath")
    if not isinstance(path, str) or not path.startswith("/"):
        return f"the event's 'rawPath' must be a string starting with '/'; expected {EXPECTED}"
    cookies = event.get("cookies")
    if cookies is not None and not (isinstance(cookies, list) and _all_strings(cookies)):
        return "the event's 'cookies' must be an array of strings or null"
    return _common_problem(event)


def _v2_request(event: dict[str, Any]) -> dict[str, Any]:
    """The 1.0 fields the routes read, from a checked 2.0 event (its own fields kept)."""
    context = event.get("requestContext") or {}
    path, stage = event["rawPath"], context.get("stage")
    if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        path = path[len(stage) + 1 :] or "/"
    return {
        **event,
        "httpMethod": context["http"]["method"],
        "path": path,
        "headers": event.get("headers") or {},
        "multiValueHeaders": None,
        "multiValueQueryStringParameters": None,
    }


def _v2_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A 1.0 answer (router.proxy_response) in format 2.0: one string per header (a
    repeated header's values joined by commas, as HTTP allows)."""
    headers = {name: ", ".join(values) for name, values in answer["multiValueHeaders"].items()}
    return {
        "statusCode": answer["statusCode"],
        "headers": headers,
        "body": answer["body"],
        "isBase64Encoded": answer["isBase64Encoded"],
    }


# -- the formats ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFormat:
    """One kind of event the function answers: how it is told (`matches`), what is wrong
    with one (`problem`), the request the routes see (`request`), and the answer from the
    routes' REST proxy answer (`answer`)."""

    name: str
    matches: Callable[[dict[str, Any]], bool]
    problem: Callable[[dict[str, Any]], str | None]
    request: Callable[[dict[str, Any]], dict[str, Any]]
    answer: Callable[[dict[str, Any]], dict[str, Any]]


REST_V1 = EventFormat("1.0", _is_v1, _v1_problem, _as_is, _as_is)
HTTP_V2 = EventFormat("2.0", _is_v2, _v2_problem, _v2_request, _v2_answer)
FORMATS = (REST_V1, HTTP_V2)  # the first that matches; the 1.0 answer for an event of none


def recognise(event: Any) -> tuple[EventFormat, str | None]:
    """The event's format and why it cannot be answered (None: it can). An event of no
    known format is answered in format 1.0."""
    foreign = _describe(event)
    if foreign:
        return REST_V1, f"this function answers {EXPECTED}; got {foreign}"
    if not event:
        return REST_V1, f"the event is empty; this function answers {EXPECTED}"
    for kind in FORMATS:
        if kind.matches(event):
            return kind, kind.problem(event)
    return REST_V1, f"the event has no 'httpMethod' or 'rawPath'; this function answers {EXPECTED}"


def event_problem(event: Any) -> str | None:
    """Why `event` is not a proxy event this function can answer, or None."""
    return recognise(event)[1]


def request_id(event: Any) -> str | None:
    """API Gateway's id of the request (requestContext.requestId), where the event has one."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    return context.get("requestId") if isinstance(context, dict) else None


def content_type(event: dict[str, Any]) -> str | None:
    """The Content-Type header, whatever its case (one look at the few headers a request has,
    not a case-insensitive copy of them all)."""
    for name, value in (event.get("headers") or {}).items():
        if len(name) == 12 and name.lower() == "content-type":
            return value
    return None


def decoded_body(event: dict[str, Any]) -> str:
    """The request body as text: base64-decoded when API Gateway says it is (isBase64Encoded,
    as `sam local generate-event` and binary media types send it). ValueError when it is not
    valid base64 or not UTF-8."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body).decode()
    return body


def error_answer(error: ApiError) -> Response:
    """{"error": message, "code": CODE} with the error's status and headers."""
    return Response(
        error.status, JSON, json.dumps(error.body(), separators=(",", ":")), error.headers
    )
