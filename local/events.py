"""The one builder of API Gateway proxy events: the local API's own (``local.api.LocalApi``,
SAM CLI's service), for events/ (``events/make_events.py``) and the benchmarks: the REST
API's (payload format 1.0) or, with ``api_type="http"``, the HTTP API's (format 2.0).

    from local.events import api_event
    event = api_event("POST", "/predict", '{"instances": [...]}')

The event is what ``python -m local.api`` would send the function for that request to this
template (resource and path parameters from the template's routes; the shape ``sam local
generate-event apigateway aws-proxy`` prints). ``request_id`` and ``now`` make it
deterministic; ``base64_body`` encodes the body as ``sam local generate-event`` does.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path

from flask import g, request

from local.template import DEFAULT_TEMPLATE

HOST = "127.0.0.1:3000"  # the local API's default address


@functools.cache
def _service(template: Path, api_type: str):
    from local.api import LocalApi
    from local.function import EnvironmentPool
    from local.template import Template

    parameters = {"ApiType": api_type, "ApiAuthMode": "IAM"} if api_type == "http" else {}
    service = LocalApi(Template(template, parameters), EnvironmentPool({}, None, 1), port=3000)
    service.create()
    return service


def api_event(
    method: str,
    path: str,
    body: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
    template: Path | str = DEFAULT_TEMPLATE,
    request_id: str | None = None,
    now: float | None = None,
    api_type: str = "rest",
) -> dict:
    """The proxy event for one request (``path`` may carry a query string); ``api_type``
    "http": the HTTP API's event (payload format 2.0)."""
    service = _service(Path(template).resolve(), api_type)
    with service._app.test_request_context(
        path,
        f"https://{HOST}",
        method=method,
        data=body,
        headers=headers or {},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ):
        if request.url_rule is None:
            raise ValueError(f"no route of {template} serves {method} {path}")
        if request_id:
            g.request_id = request_id
        g.now = now
        route = service._get_current_route(request)
        event = service._generate_lambda_event(request, route, request.method, request.endpoint)
    if base64_body and body is not None:
        event["body"] = base64.b64encode(body.encode()).decode()
        event["isBase64Encoded"] = True
    elif event.get("version") == "2.0" and body is not None:  # sam encodes 2.0 bodies itself
        event["body"], event["isBase64Encoded"] = body, False
    return event
