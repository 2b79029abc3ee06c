"""Generate functions/inference/openapi.json from the function's own routes:
python events/make_openapi.py [--check]

The function's router table (functions/inference/router.py, the decorators in app.py, with the
documentation from openapi_schemas.py) gives each route's path, method, path parameters,
summary, answers and request body schema; this adds
the API key scheme, API Gateway's own answers (template.yaml's GatewayResponses) and the error
schema. The function serves the file at GET /openapi.json. --check exits 1 if the committed file
differs.
"""

from __future__ import annotations

import json
import re
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


def operation(route) -> dict:
    """One route's OpenAPI operation; its id is the handler's name and its path, as FastAPI
    and Powertools make them (the ids this document had before)."""
    operation_id = re.sub(r"\W", "_", route.handler.__name__ + route.openapi_path)
    parameters = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": {"title": name.title(), "type": "string"},
        }
        for name in route.parameters
    ]
    described = {
        "operationId": f"{operation_id}_{route.method.lower()}",
        "parameters": parameters,
        "responses": {str(status): answer for status, answer in (route.responses or {}).items()},
    }
    if route.summary:
        described["summary"] = route.summary
    if route.request_body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.request_body}},
        }
    return described


def document() -> dict:
    sys.path.insert(0, str(FUNCTION_DIR))
    sys.path.insert(0, str(ROOT))  # a script of the repository: `local` is next to it
    import app
    import openapi_schemas

    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "serverless-ml inference API",
            "version": "1",
            "summary": "Image classification with an int8 LiteRT model on AWS Lambda, and the "
            "TensorFlow Serving REST API",
            "description": 'Errors answer {"error": "...", "code": "..."} on every route. '
            "In API_KEY mode (the default) every route but the open ones needs the x-api-key "
            "header.",
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "name": API_KEY_HEADER, "in": "header"}
            }
        },
    }
    for route in app.registered_routes():
        spec["paths"].setdefault(route.openapi_path, {})[route.method.lower()] = operation(route)
    gateway = gateway_codes()
    error = json.loads(json.dumps(openapi_schemas.ERROR_SCHEMA))
    error["properties"]["code"]["enum"] = sorted(
        set(error["properties"]["code"]["enum"]) | set(gateway)
    )
    spec["components"]["schemas"] = {"Error": error}
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in spec["paths"].items():
        for described in item.values():
            described["security"] = [] if path in OPEN_PATHS else [{"apiKey": []}]
            # API Gateway's own answers before the function: a missing or wrong key, throttling
            extra = {"429": [c for c, status in gateway.items() if status == 429]}
            if path not in OPEN_PATHS:
                extra["403"] = [c for c, status in gateway.items() if status == 403]
            for status, codes in extra.items():
                described["responses"].setdefault(
                    status, {"description": "API Gateway: " + ", ".join(codes), "content": ref}
                )
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
