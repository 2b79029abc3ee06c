"""The one builder of API Gateway proxy events: the local API's own (``local.api.LocalApi``,
SAM CLI's service), for events/ (``events/make_events.py``) and the benchmarks.

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
def _service(template: Path):
    from local.api import LocalApi
    from local.function import EnvironmentPool
    from local.template import Template

    service = LocalApi(Template(template), EnvironmentPool({}, None, 1), port=3000)
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
) -> dict:
    """The proxy event for one request (``path`` may carry a query string)."""
    service = _service(Path(template).resolve())
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
    return event
