"""Generate functions/inference/openapi.json from the function's own routes:
python events/make_openapi.py [--check]

Powertools' resolver emits the document from the route decorators of functions/inference/app.py
(paths, methods, parameters, summaries, error responses); the request body schema a route gives
in its `x-request-body` extension becomes its `requestBody`. The function serves the file at
GET /openapi.json. Generated at build time because Powertools needs pydantic to emit it, which
the Lambda layer does not ship. --check exits 1 if the committed file differs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "functions" / "inference"
TARGET = FUNCTION_DIR / "openapi.json"
API_KEY_HEADER = "x-api-key"
OPEN_PATHS = {"/", "/health", "/openapi.json"}  # GET without a key (template.yaml: Auth per event)


def gateway_codes() -> dict[str, int | None]:
    """The codes of API Gateway's own answers (template.yaml's GatewayResponses), with their
    status (None: DEFAULT_4XX/5XX, any status of that class). The API answers them too, in the
    same {"error", "code"} shape."""
    import re

    from local.template import Template

    template = Template(parameter_overrides={"BucketName": "openapi"})
    responses = template.api_properties("InferenceApi").get("GatewayResponses") or {}
    codes: dict[str, int | None] = {}
    for response in responses.values():
        for text in (response.get("ResponseTemplates") or {}).values():
            for code in re.findall(r'"code": "([A-Z_]+)"', str(text)):
                status = response.get("StatusCode")
                codes.setdefault(code, int(status) if status else None)
    return codes


def document() -> dict:
    sys.path.insert(0, str(FUNCTION_DIR))
    sys.path.insert(0, str(ROOT))  # a script of the repository: `local` is next to it
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    import app

    text = app.app.get_openapi_json_schema(
        title="serverless-ml inference API",
        version="1",
        summary="Image classification with an int8 LiteRT model on AWS Lambda, and the "
        "TensorFlow Serving REST API",
        description='Errors answer {"error": "...", "code": "..."} on every route. '
        "In API_KEY mode (the default) every route but the open ones needs the x-api-key header.",
        security_schemes={"apiKey": APIKey(name=API_KEY_HEADER, **{"in": APIKeyIn.header})},
    )
    spec = json.loads(text)
    gateway = gateway_codes()
    error = json.loads(json.dumps(app.ERROR_SCHEMA))
    error["properties"]["code"]["enum"] = sorted(
        set(error["properties"]["code"]["enum"]) | set(gateway)
    )
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = error
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in spec["paths"].items():
        for operation in item.values():
            # One handler serves a path with and without /versions/<version>; its optional
            # `version` argument is a path parameter, not a query parameter (none takes any).
            operation["parameters"] = [
                p for p in operation.get("parameters", []) if p["in"] == "path"
            ] or operation.pop("parameters", [])
            body = operation.pop("x-request-body", None)
            if body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                }
            operation["security"] = [] if path in OPEN_PATHS else [{"apiKey": []}]
            # API Gateway's own answers before the function: a missing or wrong key, throttling
            extra = {"429": [c for c, status in gateway.items() if status == 429]}
            if path not in OPEN_PATHS:
                extra["403"] = [c for c, status in gateway.items() if status == 403]
            for status, codes in extra.items():
                operation.setdefault("responses", {}).setdefault(
                    status, {"description": "API Gateway: " + ", ".join(codes), "content": ref}
                )
    schemas = spec["components"]["schemas"]
    while unused := [n for n in schemas if f'"#/components/schemas/{n}"' not in json.dumps(spec)]:
        for name in unused:  # the validation-error models Powertools adds, unused here
            del schemas[name]
    return spec


def main(argv: list[str]) -> int:
    text = json.dumps(document(), indent=2, sort_keys=True) + "\n"
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run `make events`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
