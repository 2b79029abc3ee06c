"""AWS Lambda entry point: API Gateway (REST, proxy integration) -> routes -> JSON.

Routes are thin: they parse, ask the model store for the served model, and format. The work is
in config, model_store, preprocessing, prediction and tfserving, which tests call directly.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

import proxy
import snapstart
import tfserving
import tracing
from canary import CANARY, STABLE, CanaryRouter
from capture import Capture, CaptureFailed
from config import load_tracing_mode
from errors import STATUS_BY_CODE, ApiError
from mlcore.deadline import Deadline
from mlcore.stats import input_statistics
from model_store import LoadedModel, ModelStore, create_store
from prediction import classify
from preprocessing import (
    ImageBudget,
    check_content_type,
    images_to_batch,
    instances_to_batch,
    is_binary_batch,
    may_contain_booleans,
    parse_json_body,
)
from router import HTML, JSON, Response, Router, proxy_response

logger = Logger()  # service name, level: POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL
metrics = Metrics()  # namespace, service: POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME
app = Router()  # the routes below (router.py)

HERE = os.path.dirname(os.path.abspath(__file__))
OPENAPI_FILE = os.path.join(HERE, "openapi.json")
PAGE_FILE = os.path.join(HERE, "page.html")
# The page may load nothing and call nothing but this API (its script and style are inline),
# and no other site may frame it (it holds an API key).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src blob: data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


# -- the process-wide model store ---------------------------------------------------------


@functools.cache
def get_tracing() -> tracing.Tracing:
    """TRACING_MODE's tracing (tracing.py), made on first use. Tests replace this function."""
    return tracing.create(load_tracing_mode())


def _subsegment(name: str):
    return get_tracing().span(f"## {name}")


def _record_load(model: LoadedModel) -> None:
    timings = model.timings_ms
    logger.info(
        "model loaded",
        extra={
            "model_name": model.name,
            "model_version": model.version,
            **{f"{step}_ms": round(ms, 2) for step, ms in timings.items()},
        },
    )
    if metrics.service:  # a second dimension set: each also per model version
        metrics.add_dimensions(service=metrics.service, model_version=str(model.version))
    metrics.add_metric(name="ModelLoadTime", unit=MetricUnit.Milliseconds, value=timings["total"])
    metrics.add_metric(
        name="ModelDownloadTime", unit=MetricUnit.Milliseconds, value=timings["download"]
    )
    metrics.add_metric(
        name="ModelVerifyTime", unit=MetricUnit.Milliseconds, value=timings["verify"]
    )
    metrics.add_metric(name="ModelBuildTime", unit=MetricUnit.Milliseconds, value=timings["build"])


def _record_failure(version: int | None, reason: str, role: str = STABLE) -> None:
    logger.warning(
        "model load failed", extra={"model_version": version, "reason": reason, "model_role": role}
    )
    # one document, two series: per service (the alarms') and per service and role
    _emf(
        (((("service",), ("service", "role")), (("ModelLoadFailures", "Count"),)),),
        service=metrics.service or "service_undefined",
        role=role,
        ModelLoadFailures=1,
    )


@functools.cache
def get_store() -> ModelStore:
    """Created on first use, once per execution environment. Tests replace this function."""
    return create_store(span=_subsegment, on_loaded=_record_load, on_failure=_record_failure)


def _deadline() -> Deadline:
    """This invocation's deadline (set by `answer`), shared by everything that may wait."""
    deadline = app.context.get("deadline")
    if deadline is None:  # a route called outside an invocation (tests)
        deadline = app.context["deadline"] = Deadline(get_store().settings.deadline_seconds)
    return deadline


def _served_model() -> LoadedModel:
    """The verified model, waiting for a load at most until the deadline (503 after)."""
    return get_store().get(_deadline())


def _canary_skipped(version: int, reason: str) -> None:
    logger.warning("canary not served here", extra={"model_version": version, "reason": reason})
    with single_metric(
        name="CanaryNotServed",
        unit=MetricUnit.Count,
        value=1,
        default_dimensions=metrics.default_dimensions,
    ):
        pass


@functools.cache
def get_router() -> CanaryRouter:
    """Once per environment; it looks the stable store up on each request (get_store)."""
    return CanaryRouter(
        lambda: get_store(),
        on_skipped=_canary_skipped,
        on_canary_failure=lambda version, reason: _record_failure(version, reason, CANARY),
    )


def _predicting_model() -> LoadedModel:
    """The model that answers this prediction: the stable one, or while the pointer names a
    canary, the canary for its share of requests. Its version and role go on the answer, the
    log lines (model_version, model_role) and the metrics (a `role` dimension set)."""
    model, role = get_router().choose(_deadline())
    app.context["role"] = role
    logger.append_keys(model_version=model.version, model_role=role)
    return model


def _role() -> str:
    return app.context.get("role") or STABLE


def _image_budget() -> ImageBudget:
    settings = get_store().settings
    return ImageBudget(settings.max_image_pixels, settings.max_batch_pixels, _deadline())


# -- errors -------------------------------------------------------------------------------


def _count_error(error: ApiError) -> None:
    """InvalidRequests or ServerErrors per service and code; a server error after a model was
    chosen also per service and role (one document, one value in each series)."""
    name = "InvalidRequests" if error.is_client_error else "ServerErrors"
    role = None if error.is_client_error else app.context.get("role")
    per_role = (("service", "role"),) if role else ()
    _emf(
        (((("service", "code"), *per_role), ((name, "Count"),)),),
        service=metrics.service or "service_undefined",
        code=error.code,
        **({"role": role} if role else {}),
        **{name: 1},
    )


def _error_response(error: ApiError) -> Response:
    _count_error(error)
    return proxy.error_answer(error)


@app.exception_handler(ApiError)
def handle_api_error(error: ApiError) -> Response:
    return _error_response(error)


@app.exception_handler(Exception)
def handle_unexpected_error(error: Exception) -> Response:
    logger.exception("unhandled error")
    return _error_response(
        ApiError("INTERNAL_ERROR", "internal error; the request id is in the logs")
    )


def registered_routes() -> list:
    """The router's table (the routes below): the one list of what this function answers,
    from which 404s, 405s and the OpenAPI document (openapi.json) are derived."""
    return list(app.routes)


def _serves(route, path: str) -> bool:
    """Whether `route` answers `path`: its rule matches, and no path parameter swallowed a
    ':verb' suffix the route does not have (GET /v1/models/{name} matches .../mnist:predict,
    which _tfserving_model refuses)."""
    match = route.rule.match(path)
    if not match:
        return False
    return ":" in route.openapi_path or not any(":" in v for v in match.groupdict().values())


def unmatched_route(method: str, path: str) -> ApiError:
    """404, or 405 when another method serves this path (its Allow header lists exactly the
    methods that do). `method` is never among them."""
    routes = registered_routes()
    allowed = sorted({r.method for r in routes if _serves(r, path)} - {method.upper()})
    if allowed:
        return ApiError(
            "METHOD_NOT_ALLOWED",
            f"{method[:10]} is not allowed on this path; use {' or '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    listed = ", ".join(f"{r.method} {r.openapi_path}" for r in routes)
    return ApiError("ROUTE_NOT_FOUND", f"no such route; the routes are {listed}")


@app.not_found
def handle_not_found(method: str, path: str) -> Response:
    return _error_response(unmatched_route(method, path))


# -- request helpers ----------------------------------------------------------------------


def _content_type(event: dict[str, Any]) -> str | None:
    """The Content-Type header, whatever its case (one look at the few headers a request has,
    not a case-insensitive copy of them all)."""
    for name, value in (event.get("headers") or {}).items():
        if len(name) == 12 and name.lower() == "content-type":
            return value
    return None


def _json_body(*also_allowed_media_types: str) -> tuple[dict[str, Any], bool]:
    """The body as a JSON object, and whether it may hold booleans (see may_contain_booleans)."""
    event = app.event
    check_content_type(_content_type(event), also_allowed_media_types)
    try:
        text = proxy.decoded_body(event)
    except ValueError:
        raise ApiError(
            "INVALID_JSON", "the request body is not valid base64-encoded UTF-8"
        ) from None
    payload = parse_json_body(text, get_store().settings.max_body_bytes)
    return payload, may_contain_booleans(text)


def _predict(model: LoadedModel, batch) -> tuple[Any, float]:
    """The model's probabilities for the batch, and the milliseconds the invoke took."""
    started = time.perf_counter()
    # With the X-Ray SDK (TracingMode=xray-sdk): a subsegment around the interpreter call, so a
    # trace shows model time apart from parsing and validation (about 50 us a request: each is
    # serialised and sent over UDP).
    with _subsegment("invoke"):
        probabilities = model.predict(batch)
    get_tracing().annotate("model_version", model.version)
    return probabilities, (time.perf_counter() - started) * 1000


EMF_MAX_VALUES = 100  # values of one metric in one EMF document (CloudWatch's limit)
# dimension sets: each request metric also per model version, as the monitor queries them
# and per role (stable, canary): a set of its own beside the service-level ones
EMF_PER_VERSION = (("service",), ("service", "model_version"), ("service", "role"))
EMF_PER_CHANNEL = (("service", "model_version", "channel"),)
EMF_PER_LABEL = (("service", "label"), ("service", "model_version", "label"))
# (metric name, unit)
EMF_REQUEST = (("InferenceTime", "Milliseconds"), ("InstancesPerRequest", "Count"))
EMF_BLANK = (("BlankInputs", "Count"),)
EMF_CONFIDENCE = (("Confidence", "None"),)
EMF_INTENSITY = (("InputMeanIntensity", "None"),)
EMF_PREDICTIONS = (("Predictions", "Count"),)
# Powertools flushes nothing when a request added no metric through it (the request's own are
# printed below); it would warn about that on every request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


@functools.lru_cache(maxsize=16)
def _directives(namespace: str | None, directives: tuple) -> str:
    """The CloudWatchMetrics array of (dimension sets, ((metric name, unit), ...)) directives,
    as JSON: the same for every request, so serialised once."""
    return json.dumps(
        [
            {
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in names],
            }
            for dimension_sets, names in directives
        ],
        separators=(",", ":"),
    )


def _emf(directives: tuple, **fields: Any) -> None:
    """One CloudWatch embedded metric format document, printed as Powertools prints its own
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
    the directives over the same root fields (each directive uses the dimensions it names)."""
    timestamp, metric_directives = (
        int(time.time() * 1000),
        _directives(metrics.namespace, directives),
    )
    head = f'{{"_aws":{{"Timestamp":{timestamp},"CloudWatchMetrics":{metric_directives}}},'
    # orjson: the json module's values (numbers written shortest-exact, so 1e-05 may read
    # 0.00001; UTF-8 where json escapes) in a tenth of its time: 0.3 against 4 us a document
    print(head + orjson.dumps(fields).decode()[1:])


def _record_request(
    model: LoadedModel, batch: np.ndarray, probabilities: np.ndarray, inference_ms: float
) -> None:
    """The request's metrics, per service and per service and model version: InferenceTime,
    InstancesPerRequest, and what the drift monitor (functions/monitor) compares with the
    model's baseline (mlcore.stats): the confidence of each prediction (its top probability),
    the count of blank inputs, each input's mean intensity per channel (dimension `channel`:
    0, or 0 1 2 for R G B; mlcore.stats' own statistic, the one the baseline was computed with)
    and the count of predictions per label.

    All in one EMF document for a grey-scale batch of one label and at most 100 inputs (the
    directives share the root fields, each naming its own dimensions); only more inputs, more
    channels or more labels need further documents. Written by the function itself, not through
    Powertools' add_metric: each of its calls formats the metric's whole value list in a debug
    message (O(n^2) for one value per prediction: 6 ms at 256), and its flush would be a second
    document per request. Powertools still flushes what it holds (loads, errors, captures) and
    the cold start metric."""
    service = metrics.service or "service_undefined"
    version, role = str(model.version), _role()
    confidences = probabilities.max(axis=1).tolist()  # each prediction's top probability
    means, blank = input_statistics(batch)
    counts = collections.Counter(probabilities.argmax(axis=1).tolist())
    labels = [(model.labels[i], counts[i]) for i in sorted(counts)]  # in label order
    channels = [means[:, c].tolist() for c in range(means.shape[1])]
    (label, count), step = labels[0], EMF_MAX_VALUES
    _emf(
        (
            (EMF_PER_VERSION, EMF_REQUEST + EMF_BLANK + EMF_CONFIDENCE),
            (EMF_PER_CHANNEL, EMF_INTENSITY),
            (EMF_PER_LABEL, EMF_PREDICTIONS),
        ),
        service=service,
        model_version=version,
        role=role,
        channel="0",
        label=label,
        InferenceTime=inference_ms,
        InstancesPerRequest=len(batch),
        BlankInputs=[int(np.count_nonzero(blank))],  # sum() without its Python wrapper
        Confidence=confidences[:step],
        InputMeanIntensity=channels[0][:step],
        Predictions=count,
    )
    for start in range(step, len(confidences), step):
        _emf(
            ((EMF_PER_VERSION, EMF_CONFIDENCE), (EMF_PER_CHANNEL, EMF_INTENSITY)),
            service=service,
            model_version=version,
            role=role,
            channel="0",
            Confidence=confidences[start : start + step],
            InputMeanIntensity=channels[0][start : start + step],
        )
    for channel, values in enumerate(channels[1:], start=1):
        for start in range(0, len(values), step):
            _emf(
                ((EMF_PER_CHANNEL, EMF_INTENSITY),),
                service=service,
                model_version=version,
                channel=str(channel),
                InputMeanIntensity=values[start : start + step],
            )
    for label, count in labels[1:]:
        _emf(
            ((EMF_PER_LABEL, EMF_PREDICTIONS),),
            service=service,
            model_version=version,
            label=label,
            Predictions=count,
        )


_capture_slot: list = [None, None]  # [the settings it was made from, the Capture]


def get_capture() -> Capture:
    """The capture (capture.py) for the store's settings, made once per execution environment
    (again only if the settings object changes: tests configure the function anew)."""
    settings = get_store().settings
    if _capture_slot[0] is not settings:
        capture = Capture(
            settings.capture_bucket, settings.capture_prefix, settings.capture_sample_rate
        )
        _capture_slot[:] = [settings, capture]
    return _capture_slot[1]


def _request_id() -> str:
    request_id = proxy.request_id(app.event)
    return str(request_id or getattr(app.lambda_context, "aws_request_id", "unknown"))


def _capture(model: LoadedModel, batch: np.ndarray, probabilities: np.ndarray) -> None:
    """Opt-in capture of a sampled request; a failure is logged and counted, never answered.
    An unsampled request pays one random draw (none when CaptureSampleRate is 0)."""
    capture = get_capture()
    if not capture.sampled():
        return
    # Bounded by Lambda's own timeout (less the answer's margin), not by DEADLINE_SECONDS: that
    # one bounds the waits for the registry and decoding, which are over by now.
    margin = get_store().settings.deadline_margin_seconds
    time_left = Deadline.for_invocation(app.lambda_context, margin, float("inf"))
    try:
        answers = classify(probabilities, model.labels)
        written = capture.write(model.name, model.version, _request_id(), batch, answers, time_left)
        metrics.add_metric(name="CaptureWrites", unit=MetricUnit.Count, value=len(written))
    except CaptureFailed as exc:
        logger.warning("capture failed", extra={"reason": str(exc)})
        metrics.add_metric(name="CaptureFailures", unit=MetricUnit.Count, value=1)


def _model_ref(model: LoadedModel) -> dict[str, Any]:
    return {"name": model.name, "version": model.version, "role": _role()}


# -- routes -------------------------------------------------------------------------------
# The one definition of what this function answers. template.yaml's Api events route these
# paths here (a test holds them together), and openapi.json is generated from these decorators
# (events/make_openapi.py, `make events`): summaries, error responses and the request body
# schema.

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


INSTANCES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "description": "inputs in the model's input shape (see its metadata), values in its range",
    "items": {"type": "array"},
}


def _one_of(*fields: str) -> list[dict[str, Any]]:
    """Exactly one of these fields (both at once answer 400 AMBIGUOUS_INPUT)."""
    return [
        {"required": [field], "not": {"anyOf": [{"required": [o]} for o in fields if o != field]}}
        for field in fields
    ]


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
        "signature_name": {"type": "string", "enum": [tfserving.DEFAULT_SIGNATURE]},
        "instances": INSTANCES_SCHEMA,
        "inputs": INSTANCES_SCHEMA,
    },
    "oneOf": _one_of("instances", "inputs"),
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


def _ok(description: str, schema: dict[str, Any], *error_statuses: int) -> dict[int, Any]:
    """A route's documented answers: 200 with its body's schema, and its errors."""
    ok = {"description": description, "content": {"application/json": {"schema": schema}}}
    return {200: ok, **_errors(*error_statuses)}


def _object(*required: str, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


PREDICTIONS = _object(
    "predictions",
    "model",
    predictions={
        "type": "array",
        "items": _object("label", "class_id", "confidence", "probabilities"),
    },
    model=MODEL_REF,
)


@app.get(
    "/health",
    summary="Whether a verified model is served",
    responses=_ok(
        "a verified model is served",
        _object("status", "model", status={"enum": ["ok"]}, model=MODEL_REF),
        503,
    ),
)
def health() -> dict[str, Any]:
    return {"status": "ok", "model": _model_ref(_served_model())}


@functools.cache
def _openapi_text() -> str:
    with open(OPENAPI_FILE, encoding="utf-8") as f:
        return f.read()


@app.get(
    "/openapi.json",
    summary="This API's OpenAPI document (generated from these routes)",
    responses={200: {"description": "this document", "content": {"application/json": {}}}},
)
def openapi_document():  # no return annotation: OpenAPI would try to describe Response
    return Response(200, JSON, _openapi_text())


@functools.cache
def _page_text() -> str:
    with open(PAGE_FILE, encoding="utf-8") as f:
        return f.read()


@app.get(
    "/",
    summary="A page to draw a digit on (or upload a photo) that asks POST /predict",
    responses={200: {"description": "the page", "content": {"text/html": {}}}},
)
def page():  # no return annotation: OpenAPI would try to describe Response
    return Response(200, HTML, _page_text(), headers=PAGE_HEADERS)


@app.post(
    "/predict",
    summary="Classify inputs: arrays in the model's input shape, or base64 PNG/JPEG images",
    responses=_ok("one prediction per input", PREDICTIONS, 400, 404, 413, 415, 503),
    request_body=PREDICT_BODY,
)
def predict() -> dict[str, Any]:
    payload, booleans_possible = _json_body()
    if "instances" in payload and "images" in payload:
        raise ApiError("AMBIGUOUS_INPUT", "send either 'instances' or 'images', not both")
    if "instances" not in payload and "images" not in payload:
        raise ApiError(
            "MISSING_FIELD",
            "the body needs 'instances' (arrays in the model's input shape) "
            "or 'images' (base64 PNG or JPEG strings)",
        )
    model = _predicting_model()
    max_instances = get_store().settings.max_instances
    if "instances" in payload:
        batch = instances_to_batch(
            payload["instances"], model.spec, max_instances, booleans_possible=booleans_possible
        )
    else:
        batch = images_to_batch(payload["images"], model.spec, max_instances, _image_budget())
    probabilities, inference_ms = _predict(model, batch)
    predictions = classify(probabilities, model.labels)
    _record_request(model, batch, probabilities, inference_ms)
    _capture(model, batch, probabilities)
    return {"predictions": predictions, "model": _model_ref(model)}


_TFSERVING_PREDICT = {
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
_TFSERVING_STATUS = {
    "responses": _ok("GetModelStatusResponse", _object("model_version_status"), 404, 503)
}


@app.post("/v1/models/{name}:predict", **_TFSERVING_PREDICT)
@app.post("/v1/models/{name}/versions/{version}:predict", **_TFSERVING_PREDICT)
def tfserving_predict(name: str, version: str | None = None) -> dict[str, Any]:
    store = get_store()
    tfserving.check_model(name, None, store.settings.model_name, None)
    payload, booleans_possible = _json_body(tfserving.CURL_DEFAULT_MEDIA_TYPE)
    model = _served_model() if version else _predicting_model()
    tfserving.check_model(name, version, model.name, model.version)
    fmt, values = tfserving.predict_input(payload, model.predictor.signature_input)
    if is_binary_batch(values):  # TF Serving's {"b64": ...}: images, prepared like /predict's
        budget = _image_budget()
        batch = images_to_batch(values, model.spec, store.settings.max_instances, budget, fmt)
    else:
        batch = instances_to_batch(
            values,
            model.spec,
            store.settings.max_instances,
            field=fmt,
            booleans_possible=booleans_possible,
        )
    probabilities, inference_ms = _predict(model, batch)
    _record_request(model, batch, probabilities, inference_ms)
    _capture(model, batch, probabilities)
    return tfserving.predict_response(fmt, probabilities)


def _tfserving_model(name: str, version: str | None) -> LoadedModel:
    if ":" in name or (version and ":" in version):  # e.g. GET .../mnist:predict matched {name}
        raise unmatched_route(app.event["httpMethod"], app.event["path"])
    store = get_store()
    tfserving.check_model(name, None, store.settings.model_name, None)
    model = _served_model()
    tfserving.check_model(name, version, model.name, model.version)
    return model


@app.get("/v1/models/{name}", summary="TensorFlow Serving model status", **_TFSERVING_STATUS)
@app.get(
    "/v1/models/{name}/versions/{version}",
    summary="TensorFlow Serving model status",
    **_TFSERVING_STATUS,
)
def tfserving_status(name: str, version: str | None = None) -> dict[str, Any]:
    return tfserving.model_status(_tfserving_model(name, version).version)


_METADATA = {
    "summary": "TensorFlow Serving model metadata (signature_def)",
    "responses": _ok("GetModelMetadataResponse", _object("model_spec", "metadata"), 404, 503),
}


@app.get("/v1/models/{name}/metadata", **_METADATA)
@app.get("/v1/models/{name}/versions/{version}/metadata", **_METADATA)
def tfserving_metadata(name: str, version: str | None = None) -> dict[str, Any]:
    model = _tfserving_model(name, version)
    predictor = model.predictor
    return tfserving.model_metadata(
        name=model.name,
        version=model.version,
        input_key=predictor.signature_input,
        input_tensor=predictor.input_tensor_name,
        input_shape=model.manifest["input"]["shape"],
        output_key=predictor.signature_output,
        output_tensor=predictor.output_tensor_name,
        output_shape=model.manifest["output"]["shape"],
        classifier={"labels": model.labels, "input": _input_kind(model.manifest["input"])},
    )


def _input_kind(spec: dict[str, Any]) -> dict[str, Any]:
    """What the page needs to know of the model's input: shape, colour, resize policy."""
    keys = ("shape", "color", "value_range", "preprocessing")
    return {key: spec[key] for key in keys if key in spec}


def preload_model(environ: Mapping[str, str] = os.environ) -> None:
    """Where Lambda initialises an environment ahead of requests (provisioned concurrency,
    SnapStart), load and verify the model during that init so no request waits for it. On
    demand, init is on the first request's path anyway, and the first request loads it. It
    waits at most the deadline's cap (DEADLINE_SECONDS); a load that takes longer goes on in
    the background. A failure here is logged; requests answer 503 until a load succeeds."""
    ahead_of_requests = ("provisioned-concurrency", "snap-start")
    if environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") not in ahead_of_requests:
        return
    try:
        get_store().get()
    except Exception:
        logger.exception("model preload failed; the first request tries again")


preload_model()
# SnapStart: the model loaded before the snapshot, clients and pointer fresh after each restore.
snapstart.register(lambda: get_store(), logger, also_restore=lambda: get_router().restored())


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return get_tracing().handler(answer)(event, context)  # traced only with the X-Ray SDK


def answer(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Every event gets an HTTP answer: a REST API proxy event goes to the routes with this
    invocation's deadline; anything else is a 400 UNSUPPORTED_EVENT (see proxy.py)."""
    # API Gateway's request id in every log line (Powertools' correlation_id_path would find it
    # with a JMESPath search on every request)
    logger.set_correlation_id(proxy.request_id(event))
    logger.remove_keys(["model_version", "model_role"])  # this invocation's, set when chosen
    problem = proxy.event_problem(event)
    if problem is not None:
        return proxy_response(_error_response(ApiError("UNSUPPORTED_EVENT", problem)))
    settings = get_store().settings
    app.context["deadline"] = Deadline.for_invocation(
        context, settings.deadline_margin_seconds, settings.deadline_seconds
    )
    return app.resolve(event, context)
