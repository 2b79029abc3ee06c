"""The function's routes, and how an API Gateway REST API proxy event reaches one.

A `Router` holds the table of routes (method, path template, handler and the route's
documentation, openapi_schemas'): dispatch reads it, app.py derives its 404s and 405s from it
(methods_serving), and events/make_openapi.py writes openapi.json from it. Answers have the REST
proxy integration's shape (statusCode, multiValueHeaders, body, isBase64Encoded).

Written here, not taken from Powertools' APIGatewayRestResolver (the function's router until
issue 12), because of what that one cost on every cold start and every request, measured side
by side (bench/README.md, "Cold start"): importing Powertools' event_handler package imports
every resolver it has (AppSync, Bedrock agents, VPC Lattice, ...) and every event data class,
22 ms of a 167 ms cold start; its middleware chain around each route took about 45 us of a
280 us batch-1 request. What the function used of it is what is here: path templates with
parameters, an exception handler per exception type, a not-found handler, and dicts answered as
JSON. Logging and metrics stay Powertools' (app.py).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON = "application/json"
HTML = "text/html"
_PARAMETER = re.compile(r"\{(\w+)\}")
# What a path parameter may hold: word characters and URL-safe punctuation, never "/" (the
# class Powertools' resolver used, so the same paths match as before).
_PARAMETER_VALUE = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"


@dataclass(frozen=True)
class Response:
    """An answer a handler builds itself (any content type); a dict is answered as JSON."""

    status_code: int
    content_type: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """One method on one path template: "/v1/models/{name}:predict" matches any path where
    {name} is one or more word characters or URL-safe punctuation (no "/"), passed to the
    handler by name."""

    method: str
    openapi_path: str
    handler: Callable[..., Any]
    summary: str | None = None
    responses: Mapping[int, Any] | None = None  # OpenAPI responses, by status
    request_body: Mapping[str, Any] | None = None  # the JSON body's schema, for OpenAPI

    @functools.cached_property
    def rule(self) -> re.Pattern:
        """The template as a regular expression (compiled when first needed: static paths
        are found by a dict lookup)."""
        pattern = "".join(
            f"(?P<{part}>{_PARAMETER_VALUE})" if index % 2 else re.escape(part)
            for index, part in enumerate(_PARAMETER.split(self.openapi_path))
        )
        return re.compile(pattern + r"\Z")

    @functools.cached_property
    def parameters(self) -> list[str]:
        return _PARAMETER.findall(self.openapi_path)


class Router:
    """Routes, exception handlers and a not-found handler; `resolve(event, context)` answers
    a REST API proxy event (proxy.event_problem has checked its shape) with the first route
    of its method whose template matches its path: static paths first, then templates in the
    order they were added. `context` holds this invocation's values and is emptied after it."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._static: dict[tuple[str, str], Route] = {}
        self._exception_handlers: dict[type[BaseException], Callable[[Any], Any]] = {}
        self._not_found: Callable[[str, str], Any] | None = None
        self.event: dict[str, Any] = {}
        self.lambda_context: Any = None
        self.context: dict[str, Any] = {}

    def route(self, method: str, path: str, **documentation: Any) -> Callable:
        """Decorator: `handler` answers `method` on `path` (documentation: summary,
        responses, request_body). Decorators stack: one handler may serve several paths."""

        def register(handler: Callable) -> Callable:
            route = Route(method.upper(), path, handler, **documentation)
            self.routes.append(route)
            if not route.parameters:
                self._static.setdefault((route.method, path), route)
            return handler

        return register

    def get(self, path: str, **documentation: Any) -> Callable:
        return self.route("GET", path, **documentation)

    def post(self, path: str, **documentation: Any) -> Callable:
        return self.route("POST", path, **documentation)

    def exception_handler(self, exception_type: type[BaseException]) -> Callable:
        """Decorator: `handler(exception)` answers what a route raised of this type (the
        most specific registered type of the exception's class hierarchy)."""

        def register(handler: Callable) -> Callable:
            self._exception_handlers[exception_type] = handler
            return handler

        return register

    def not_found(self, handler: Callable[[str, str], Any]) -> Callable:
        """Decorator: `handler(method, path)` answers a request no route matches."""
        self._not_found = handler
        return handler

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        route = self._static.get((method, path))
        if route is not None:
            return route, {}
        for route in self.routes:
            if route.method == method and route.parameters:
                found = route.rule.match(path)
                if found:
                    return route, found.groupdict()
        return None

    def methods_serving(self, path: str) -> set[str]:
        """The methods whose routes answer `path` (a 405's Allow header). A route answers a path
        its rule matches unless a path parameter swallowed a ':verb' suffix the route's own
        template does not have (GET /v1/models/{name} matches .../mnist:predict, but does not
        answer it)."""
        methods = set()
        for route in self.routes:
            match = route.rule.match(path)
            if match and (
                ":" in route.openapi_path or not any(":" in v for v in match.groupdict().values())
            ):
                methods.add(route.method)
        return methods

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.event, self.lambda_context = event, context
        try:
            return proxy_response(self._answer(event["httpMethod"].upper(), event["path"]))
        finally:
            self.event, self.lambda_context, self.context = {}, None, {}

    def _answer(self, method: str, path: str) -> Any:
        try:
            matched = self.match(method, path)
            if matched is None:
                if self._not_found is None:
                    return Response(404, JSON, json.dumps({"message": "Not found"}))
                return self._not_found(method, path)
            route, arguments = matched
            return route.handler(**arguments)
        except Exception as exc:
            for kind in type(exc).__mro__:
                handler = self._exception_handlers.get(kind)
                if handler is not None:
                    return handler(exc)
            raise


def proxy_response(result: Response | dict[str, Any]) -> dict[str, Any]:
    """The REST proxy integration's answer: a Response as it is, a dict as JSON with 200."""
    if not isinstance(result, Response):
        # orjson: 0.7 against 8.6 us for a batch-1 answer; the same JSON values as the json
        # module's (numbers shortest-exact, e.g. 1e-05 as 0.00001; non-ASCII as UTF-8). The
        # answer itself, not a Response first: a frozen dataclass's __init__ costs a few us of
        # every prediction.
        return _proxy_answer(200, {"Content-Type": [JSON]}, orjson.dumps(result).decode())
    headers = {"Content-Type": [result.content_type]}
    headers.update((name, [value]) for name, value in result.headers.items())
    return _proxy_answer(result.status_code, headers, result.body)


def _proxy_answer(status: int, headers: dict[str, list[str]], body: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "multiValueHeaders": headers,
        "body": body,
        "isBase64Encoded": False,
    }
