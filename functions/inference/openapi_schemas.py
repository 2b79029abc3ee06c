"""What each route of app.py documents in openapi.json: its summary, its answers (200 with the
body's schema, and its error statuses) and its request body's schema.

app.py's route decorators pass these to the router's table (router.Route), from which
events/make_openapi.py writes openapi.json at build time (`make events`); a test holds the
committed file to them. Nothing here runs per request.
"""

from __future__ import annotations

from typing import Any

from errors import STATUS_BY_CODE

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "what was wrong and what is allowed"},
        "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
    },
}


def _errors(*statuses: int) -> dict[int, dict[str, Any]]:
    return {
        status: {
            "description": ", ".join(c for c, s in STATUS_BY_CODE.items() if s == status),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


def _ok(description: str, schema: dict[str, Any], *error_statuses: int) -> dict[int, Any]:
    """A route's documented answers: 200 with its body's schema, and its errors."""
    ok = {"description": description, "content": {"application/json": {"schema": schema}}}
    return {200: ok, **_errors(*error_statuses)}


def _object(*required: str, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


def _one_of(*fields: str) -> list[dict[str, Any]]:
    """Exactly one of these fields (both at once answer 400 AMBIGUOUS_INPUT)."""
    return [
        {"required": [field], "not": {"anyOf": [{"required": [o]} for o in fields if o != field]}}
        for field in fields
    ]


INSTANCES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "description": "inputs in the model's input shape (see its metadata), values in its range",
    "items": {"type": "array"},
}
PREDICT_BODY = {
    "type": "object",
    "properties": {
        "instances": INSTANCES_SCHEMA,
        "images": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "description": "a base64 PNG or JPEG"},
        },
    },
    "oneOf": _one_of("instances", "images"),
}
TFSERVING_BODY = {
    "type": "object",
    "properties": {
        "signature_name": {
            "type": "string",
            "description": "a signature of the model (its metadata lists them); '' or none: "
            "the default one",
        },
        "instances": {
            "type": "array",
            "minItems": 1,
            "description": "row format: one input's values per instance, or an object of "
            "every input by name per instance",
        },
        "inputs": {
            "description": "columnar format: the one input's tensor, or an object of every "
            "input's tensor by name",
        },
    },
    "oneOf": _one_of("instances", "inputs"),
}
V2_TENSOR = _object(
    "name",
    "shape",
    "datatype",
    "data",
    name={"type": "string"},
    shape={"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 8},
    datatype={
        "type": "string",
        "enum": ["BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32"],
    },
    data={"type": "array", "description": "the values, nested or flat in row-major order"},
    parameters={"type": "object"},
)
V2_INFER_BODY = {
    **_object(
        "inputs",
        id={"type": "string"},
        model_name={"type": "string", "description": "ignored: the path names the model"},
        model_version={"type": "string", "description": "ignored: the path names the version"},
        parameters={"type": "object"},
        inputs={"type": "array", "minItems": 1, "items": V2_TENSOR},
        outputs={
            "type": "array",
            "minItems": 1,
            "items": _object("name", name={"type": "string"}, parameters={"type": "object"}),
        },
    ),
    "additionalProperties": False,
}
MODEL_REF = {
    "type": "object",
    "required": ["name", "version", "role"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer"},
        # stable: the served version; canary: the canary version, for its share of requests
        "role": {"type": "string", "enum": ["stable", "canary"]},
    },
}
PREDICTIONS = _object(
    "predictions",
    "model",
    predictions={
        "type": "array",
        "items": _object("label", "class_id", "confidence", "probabilities"),
    },
    model=MODEL_REF,
)

# -- each route's documentation (the keyword arguments of its decorator) ------------------

HEALTH = {
    "summary": "Whether a verified model is served",
    "responses": _ok(
        "a verified model is served",
        _object("status", "model", status={"enum": ["ok"]}, model=MODEL_REF),
        503,
    ),
}
OPENAPI_DOCUMENT = {
    "summary": "This API's OpenAPI document (generated from these routes)",
    "responses": {200: {"description": "this document", "content": {"application/json": {}}}},
}
PAGE = {
    "summary": "A page to draw a digit on (or upload a photo) that asks POST /predict",
    "responses": {200: {"description": "the page", "content": {"text/html": {}}}},
}
PREDICT = {
    "summary": "Classify inputs: arrays in the model's input shape, or base64 PNG/JPEG images",
    "responses": _ok("one prediction per input", PREDICTIONS, 400, 404, 413, 415, 503),
    "request_body": PREDICT_BODY,
}
TFSERVING_PREDICT = {
    "summary": "TensorFlow Serving predict: row (instances) or columnar (inputs) format",
    "responses": _ok(
        "TF Serving's answer: predictions (row format) or outputs (columnar)",
        {"type": "object", "oneOf": [_object("predictions"), _object("outputs")]},
        400,
        404,
        413,
        415,
        503,
    ),
    "request_body": TFSERVING_BODY,
}
TFSERVING_STATUS = {
    "summary": "TensorFlow Serving model status",
    "responses": _ok("GetModelStatusResponse", _object("model_version_status"), 404, 503),
}
TFSERVING_METADATA = {
    "summary": "TensorFlow Serving model metadata (signature_def)",
    "responses": _ok("GetModelMetadataResponse", _object("model_spec", "metadata"), 404, 503),
}

V2_SERVER = {
    "summary": "Open Inference Protocol (v2): server metadata",
    "responses": _ok("name, version, extensions", _object("name", "version", "extensions")),
}
V2_LIVE = {
    "summary": "Open Inference Protocol (v2): the server is live",
    "responses": _ok("live", _object("live")),
}
V2_READY = {
    "summary": "Open Inference Protocol (v2): a model can be served (503 while none can)",
    "responses": _ok("ready", _object("ready"), 503),
}
V2_MODEL_READY = {
    "summary": "Open Inference Protocol (v2): this model (version) is ready",
    "responses": _ok("ready", _object("name", "ready"), 404, 503),
}
V2_MODEL_METADATA = {
    "summary": "Open Inference Protocol (v2): the model's inputs and outputs",
    "responses": _ok(
        "$metadata_model_response",
        _object("name", "versions", "platform", "inputs", "outputs"),
        404,
        503,
    ),
}
V2_INFER = {
    "summary": "Open Inference Protocol (v2): infer with JSON tensors",
    "responses": _ok(
        "$inference_response",
        _object("model_name", "model_version", "outputs"),
        400,
        404,
        413,
        415,
        503,
    ),
    "request_body": V2_INFER_BODY,
}
