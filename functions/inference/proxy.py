"""What this function answers: API Gateway REST API proxy events (payload format 1.0).

Anything else a caller can send to Lambda (an empty or malformed event, an HTTP API payload 2.0
event, an S3 or SQS notification, a test event from the console) gets a proxy-shaped 400
UNSUPPORTED_EVENT that says what was expected, never an exception: a caller's mistake is not a
function error (the FunctionErrors alarm), and nothing of the code's internals is returned.
"""

from __future__ import annotations

import base64
import json
from itertools import chain, repeat
from typing import Any

from errors import ApiError
from router import JSON, Response

EXPECTED = "an API Gateway REST API proxy event (payload format 1.0)"
_STRING_MAPS = ("headers", "queryStringParameters", "pathParameters", "stageVariables")
_LIST_MAPS = ("multiValueHeaders", "multiValueQueryStringParameters")


def _describe(event: Any) -> str | None:
    """What kind of foreign event this is, when it can be told."""
    if not isinstance(event, dict):
        kind = {list: "a JSON array", str: "a string", type(None): "null"}.get(type(event))
        return kind or ("a boolean" if isinstance(event, bool) else "a number")
    if event.get("version") == "2.0" or "rawPath" in event or "routeKey" in event:
        return "an HTTP API or function URL event (payload format 2.0)"
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


def request_id(event: Any) -> str | None:
    """API Gateway's id of the request (requestContext.requestId), where the event has one."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    return context.get("requestId") if isinstance(context, dict) else None


def event_problem(event: Any) -> str | None:
    """Why `event` is not a REST API proxy event this function can answer, or None."""
    foreign = _describe(event)
    if foreign:
        return f"this function answers {EXPECTED}; got {foreign}"
    if not event:
        return f"the event is empty; this function answers {EXPECTED}"
    method, path = event.get("httpMethod"), event.get("path")
    if not isinstance(method, str) or not method.strip():
        return f"the event has no 'httpMethod'; this function answers {EXPECTED}"
    if not isinstance(path, str) or not path.startswith("/"):
        return f"the event's 'path' must be a string starting with '/'; expected {EXPECTED}"
    for key in _STRING_MAPS:
        value = event.get(key)
        if value is not None and not (isinstance(value, dict) and _all_strings(value)):
            return f"the event's '{key}' must be an object of strings or null"
    for key in _LIST_MAPS:
        value = event.get(key)
        if value is not None and not (isinstance(value, dict) and _all_string_lists(value)):
            return f"the event's '{key}' must be an object of string arrays or null"
    if event.get("body") is not None and not isinstance(event["body"], str):
        return "the event's 'body' must be a string or null"
    if not isinstance(event.get("isBase64Encoded", False), bool | None):
        return "the event's 'isBase64Encoded' must be a boolean"
    if not isinstance(event.get("requestContext", {}), dict | None):
        return "the event's 'requestContext' must be an object"
    return None


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
