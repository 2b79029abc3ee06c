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


def document() -> dict:
    sys.path.insert(0, str(FUNCTION_DIR))
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
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = app.ERROR_SCHEMA
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
