"""What each route of app.py documents in openapi.json: its summary, its answers (200 with the
body's schema, and its error statuses) and its request body's schema.

app.py's route decorators pass these to the router's table (router.Route), from which
events/make_openapi.py writes openapi.json at build time (`make events`); a test holds the
committed file to them. Nothing here runs per request.
"""

from __future__ import annotations

import json
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
# /predict's model (models.py): a served name; without it, the default model (ModelName)
MODEL_FIELD = {"type": "string", "description": "the model that answers (default: ModelName)"}
PREDICT_BODY = {
    "type": "object",
    "properties": {
        "model": MODEL_FIELD,
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

HEALTH_REGISTRY = {
    "type": "object",
    "description": "the store's own report (ModelStore.health): status, served, pointer, "
    "pointer_refused, canary_refused, last_error, loading, refused, retrying, and canary "
    "(version, state, refused) while the pointer names one",
}
HEALTH_MODELS = {
    "type": "array",
    "description": "every served model as this environment holds it now",
    "items": _object("name", "loaded", "version", "refused"),
}
DEEP_HEALTH = {
    "summary": "Whether a verified model is served, loading it if needed (behind the API's "
    "auth: it may start a model load and wait for it)",
    "responses": _ok(
        "a verified model is served; status ok (the version the pointer names, nothing "
        "failing) or degraded (serving the last good version: the pointer, its canary or the "
        "version it names is refused, or the last refresh failed; registry says why)",
        _object(
            "status",
            "model",
            "registry",
            "models",
            status={"enum": ["ok", "degraded"]},
            model=MODEL_REF,
            registry=HEALTH_REGISTRY,
            models=HEALTH_MODELS,
        ),
        503,
    ),
}
HEALTH = {
    "summary": "What this environment serves now, from memory: it never loads, waits or reads "
    "the registry (open; GET /health/deep loads)",
    "responses": {
        **_ok(
            "status ok or degraded (a model is served, as GET /health/deep says) or starting "
            "(nothing served yet and nothing failed: no request here has needed the model yet, "
            "or its first load runs; model.version is null)",
            _object(
                "status",
                "model",
                "registry",
                "models",
                status={"enum": ["ok", "degraded", "starting"]},
                model={
                    **MODEL_REF,
                    "properties": {
                        **MODEL_REF["properties"],
                        "version": {"type": ["integer", "null"]},
                    },
                },
                registry=HEALTH_REGISTRY,
                models=HEALTH_MODELS,
            ),
        ),
        503: {
            "description": "MODEL_UNAVAILABLE: a load failed and nothing is served here (status "
            "unavailable); error and code, with the 200's fields",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    },
}
OPENAPI_DOCUMENT = {
    "summary": "This API's OpenAPI document (generated from these routes), with the request "
    "bodies of the model served now",
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


# -- the served model's bodies (GET /openapi.json) -------------------------------------------
# openapi.json (generated at build time) cannot know the model a deployment serves; GET
# /openapi.json answers it with the request bodies of the served model: each input's nesting,
# sizes and value range, so that a body the schema allows is one the API accepts. Except what
# JSON Schema cannot say, stated in each body's description: an image classifier's "images"
# must be decodable PNG or JPEG and its pixels not all fractions within [0, 1]
# (WRONG_VALUE_RANGE); a v2 tensor's data must have as many values as its shape says.


def _leaf(spec) -> dict[str, Any]:
    if spec.served_dtype == "bool":
        return {"type": "boolean"}
    kind = "number" if spec.served_dtype.startswith("float") else "integer"
    low, high = spec.value_range or spec.representable_range() or (None, None)
    if low is None and kind == "integer":
        import numpy as np

        info = np.iinfo(spec.served_dtype)
        low, high = int(info.min), int(info.max)
    bounds = {} if low is None else {"minimum": low, "maximum": high}
    return {"type": kind, **bounds}


def _nested(dims, leaf: dict[str, Any]) -> dict[str, Any]:
    """Nested arrays of these dimensions (-1: one or more items) around leaf values."""
    schema = leaf
    for dim in reversed(dims):
        schema = {
            "type": "array",
            "minItems": max(1, dim),
            "maxItems": dim if dim > 0 else None,
            "items": schema,
        }
        if schema["maxItems"] is None:
            del schema["maxItems"]
    return schema


def _batch(item: dict[str, Any], max_instances: int) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": max_instances, "items": item}


def served_bodies(model, max_instances: int) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path template) -> the request body schema of the served model's routes."""
    signature = model.signatures[model.default_signature]
    per_instance = {t.key: _nested(t.shape[1:], _leaf(t)) for t in signature.inputs}
    if model.spec is not None:  # an image classifier also takes (H, W) for grey, and flat
        (spec,) = signature.inputs
        rows = columns = {  # one shape for every instance of a request
            "anyOf": [
                _batch(_nested(shape, _leaf(spec)), max_instances)
                for shape in model.spec.accepted_shapes
            ]
        }
    elif len(per_instance) == 1:
        (instance,) = per_instance.values()
        rows = columns = _batch(instance, max_instances)
    else:
        names = sorted(per_instance)
        rows = _batch(
            {**_object(*names, **per_instance), "additionalProperties": False}, max_instances
        )
        columns = {
            **_object(*names, **{n: _batch(s, max_instances) for n, s in per_instance.items()}),
            "additionalProperties": False,
        }
    signatures = sorted({"", model.default_signature})
    tfserving = {
        "type": "object",
        "properties": {
            "signature_name": {"type": "string", "enum": signatures},
            "instances": rows,
            "inputs": columns,
        },
        "additionalProperties": False,
        "oneOf": _one_of("instances", "inputs"),
    }
    if model.spec is not None:  # an image classifier: its instances as /predict takes them
        images = {
            "type": "array",
            "minItems": 1,
            "maxItems": max_instances,
            "items": {"type": "string", "description": "a base64 PNG or JPEG"},
        }
        predict = {
            "type": "object",
            "description": "pixels all within [0, 1], some fractions: 400 WRONG_VALUE_RANGE",
            "properties": {"model": MODEL_FIELD, "instances": rows, "images": images},
            "additionalProperties": False,
            "oneOf": _one_of("instances", "images"),
        }
    else:
        predict = {
            "type": "object",
            "properties": {"model": MODEL_FIELD, "instances": rows},
            "required": ["instances"],
            "additionalProperties": False,
        }
    tensors = [
        {
            **_object(
                "name",
                "shape",
                "datatype",
                "data",
                name={"enum": [t.key]},
                datatype={"enum": [t.v2_datatype]},
                shape={
                    "type": "array",
                    "minItems": len(t.shape),
                    "maxItems": len(t.shape),
                    "items": {"type": "integer", "minimum": 1},
                },
                data={
                    "type": "array",
                    "description": "as many values as the shape says",
                    "items": {"anyOf": [_leaf(t), {"type": "array"}]},
                },
                parameters={"type": "object"},
            ),
            "additionalProperties": False,
        }
        for t in signature.inputs
    ]
    v2 = json.loads(json.dumps(V2_INFER_BODY))
    v2["properties"]["inputs"] = {
        "type": "array",
        "minItems": len(tensors),
        "maxItems": len(tensors),
        "items": {"oneOf": tensors},
    }
    v2["properties"]["outputs"]["items"]["properties"]["name"] = {"enum": signature.output_names}
    bodies = {("POST", "/predict"): predict}
    for path in (
        "/v1/models/{name}:predict",
        "/v1/models/{name}/versions/{version}:predict",
        "/v1/models/{name}/labels/{label}:predict",
    ):
        bodies[("POST", path)] = tfserving
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        bodies[("POST", path)] = v2
    return bodies


def served_document(document: dict[str, Any], model, max_instances: int) -> dict[str, Any]:
    """The build-time document with the served model's request bodies and its name."""
    document = json.loads(json.dumps(document))
    for (method, path), schema in served_bodies(model, max_instances).items():
        operation = document["paths"][path][method.lower()]
        operation["requestBody"]["content"]["application/json"]["schema"] = schema
        for parameter in operation["parameters"]:
            if parameter["name"] == "name":
                parameter["schema"]["enum"] = [model.name]
    document["info"]["description"] += (
        f" The request bodies are those of the model served now: {model.name} version "
        f"{model.version} (its own inputs, sizes and value ranges)."
    )
    return document
