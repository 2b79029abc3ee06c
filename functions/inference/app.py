"""AWS Lambda entry point: API Gateway (REST or HTTP API, proxy integration) -> routes -> JSON.

Routes are thin: they parse, ask the model store for the served model, and format. The work is
in config, model_store, preprocessing, prediction and tfserving, which tests call directly; each
route's OpenAPI documentation is in openapi_schemas, the request metrics' documents in emf (its
docstring says which metrics go there and which through Powertools' Metrics here).
"""

from __future__ import annotations

# The cold start of the API function on demand (config.loads_model_at_import): the model store
# is made and its first load started before anything else is imported, so that the registry
# reads, the model's download and the interpreter's build run in the store's thread while
# Powertools and the routes import. The imports below are therefore after this block on purpose
# (`isort: split` keeps ruff from sorting them above it; E402 is allowed for this file in
# pyproject.toml). The hooks are bound late: they are defined below, and a store delivers its
# reports in the thread of the request that asks for the model (model_store), never in its own.
import os

import config
import model_store


def _start_early_load() -> model_store.ModelStore | None:
    if not config.loads_model_at_import(os.environ):
        return None
    try:
        store = model_store.create_store(
            on_loaded=lambda model: _record_load(model),
            on_failure=lambda *failure: _record_failure(*failure),
        )
    except Exception:  # a wrong setting: get_store() raises it again in the first request
        return None
    store.start_loading()
    return store


_early_store = _start_early_load()

# isort: split
import functools
import json
import time
from collections.abc import Mapping
from typing import Any

import cors
import numpy as np
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.provider import cold_start
from aws_lambda_powertools.utilities.typing import LambdaContext

import emf
import openapi_schemas as docs
import proxy
import snapstart
import tfserving
import tracing
from canary import CANARY, STABLE, ModelChooser, find
from capture import Capture, CaptureFailed
from config import load_tracing_mode
from errors import ApiError, ModelUnavailable
from mlcore.deadline import Deadline
from mlcore.inference import TensorError, run
from mlcore.signatures import DEFAULT_SIGNATURE, Signature
from model_store import LoadedModel, ModelStore, create_store
from models import ModelSet, Served
from prediction import classify, generic_predictions
from preprocessing import (
    ImageBudget,
    images_to_batch,
    instances_and_range,
    is_binary_batch,
    may_contain_booleans,
    read_json,
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


# -- once per execution environment: tracing, the model store and its hooks, the chooser --


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
    if metrics.service:  # a second dimension set: each also per model and version
        metrics.add_dimensions(
            service=metrics.service, model=model.name, model_version=str(model.version)
        )
    metrics.add_metric(name="ModelLoadTime", unit=MetricUnit.Milliseconds, value=timings["total"])
    metrics.add_metric(
        name="ModelDownloadTime", unit=MetricUnit.Milliseconds, value=timings["download"]
    )
    metrics.add_metric(
        name="ModelVerifyTime", unit=MetricUnit.Milliseconds, value=timings["verify"]
    )
    metrics.add_metric(name="ModelBuildTime", unit=MetricUnit.Milliseconds, value=timings["build"])


def _service() -> str:
    """The service dimension's value, as Powertools names it when the service is not set."""
    return metrics.service or "service_undefined"


def _record_failure(version: int | None, reason: str, role: str = STABLE) -> None:
    logger.warning(
        "model load failed", extra={"model_version": version, "reason": reason, "model_role": role}
    )
    emf.model_load_failure(metrics.namespace, _service(), role)


def _record_eviction(name: str, model: LoadedModel, why: str) -> None:
    """A model released to make room for another (models.py): logged, and counted per service
    (ModelEvictions: a steady count means the budget holds fewer models than the traffic uses)."""
    logger.info(
        "model evicted",
        extra={"model_name": name, "model_version": model.version, "reason": f"{why} budget"},
    )
    _count_once("ModelEvictions")


def _count_once(name: str) -> None:
    """One count of `name` in a document of its own, outside the request's metrics (it may
    happen while a load runs, whatever the request records)."""
    with single_metric(
        name=name, unit=MetricUnit.Count, value=1, default_dimensions=metrics.default_dimensions
    ):
        pass


@functools.cache
def get_store() -> ModelStore:
    """Created on first use, once per execution environment (or during import, already
    loading: _early_store). Tests replace this function."""
    if _early_store is not None:
        return _early_store
    return create_store(span=_subsegment, on_loaded=_record_load, on_failure=_record_failure)


def _deadline() -> Deadline:
    """This invocation's deadline (set by `answer`), shared by everything that may wait."""
    deadline = app.context.get("deadline")
    if deadline is None:  # a route called outside an invocation (tests)
        deadline = app.context["deadline"] = Deadline(get_store().settings.deadline_seconds)
    return deadline


def _served_model() -> LoadedModel:
    """The verified model the request names (the default one without a name), waiting for a
    load at most until the deadline (503 after)."""
    return _served().store.get(_deadline())


@functools.cache
def get_models() -> ModelSet:
    """The served models by name (models.py): the default one is get_store()'s, each other one
    gets its own store and chooser on first use. Tests replace get_store (the others follow)."""
    return ModelSet(
        lambda: get_store(),
        lambda: get_chooser(),
        lambda store: _chooser(store),
        on_evicted=_record_eviction,
    )


def _served() -> Served:
    """The model this request names (by its path, /predict's "model" field), else the default."""
    served = app.context.get("served")
    if served is None:
        served = app.context["served"] = get_models().served(get_store().settings.model_name)
    return served


def _name(name: str) -> Served:
    """The served model `name` for this request (404 MODEL_NOT_FOUND naming those served)."""
    served = app.context["served"] = get_models().served(name, _deadline())
    logger.append_keys(model_name=served.name)
    return served


def _canary_skipped(version: int, reason: str) -> None:
    logger.warning("canary not served here", extra={"model_version": version, "reason": reason})
    _count_once("CanaryNotServed")


@functools.cache
def get_chooser() -> ModelChooser:
    """Once per environment; it looks the stable store up on each request (get_store)."""
    return _chooser(lambda: get_store())


def _chooser(store) -> ModelChooser:
    """A model's chooser (its canary), reporting through this module's hooks."""
    return ModelChooser(
        store,
        on_skipped=_canary_skipped,
        on_canary_failure=lambda version, reason: _record_failure(version, reason, CANARY),
    )


def _predicting_model(version: str | None = None, label: str | None = None) -> LoadedModel:
    """The model that answers this request: the version or label the path names (any version
    held: the stable one and a running canary), else the stable one or, while the pointer
    names a canary, the canary for its share of requests. Its version and role go on the
    answer, the log lines (model_version, model_role) and the metrics (a `role` dimension)."""
    model, role = _served().chooser.pick(_deadline(), version, label)
    app.context["role"] = role
    logger.append_keys(model_name=model.name, model_version=model.version, model_role=role)
    return model


def _check_name(name: str, *path_values: str | None) -> None:
    """404 MODEL_NOT_FOUND unless the path names a served model (models.py), which then answers
    this request. A GET whose {name} (or version, or label) swallowed a ':verb' suffix (GET
    .../mnist:predict) matched no route."""
    if (
        any(":" in value for value in (name, *path_values) if value)
        and app.event.get("httpMethod", "").upper() == "GET"
    ):
        raise unmatched_route(app.event["httpMethod"], app.event["path"])
    _name(name)


def _role() -> str:
    return app.context.get("role") or STABLE


def _image_budget() -> ImageBudget:
    settings = get_store().settings
    return ImageBudget(settings.max_image_pixels, settings.max_batch_pixels, _deadline())


# -- errors -------------------------------------------------------------------------------


def _error_response(error: ApiError) -> Response:
    """Counted (InvalidRequests or ServerErrors, emf.request_error), then answered."""
    emf.request_error(
        metrics.namespace, _service(), error.code, error.is_client_error, app.context.get("role")
    )
    return proxy.error_answer(error)


@app.exception_handler(ApiError)
def handle_api_error(error: ApiError) -> Response:
    return _error_response(error)


@app.exception_handler(TensorError)
def handle_tensor_error(error: TensorError) -> Response:
    return _error_response(ApiError(error.code, error.message))


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


def unmatched_route(method: str, path: str) -> ApiError:
    """404, or 405 when another method serves this path (its Allow header lists exactly the
    methods that do). `method` is never among them."""
    routes = registered_routes()
    allowed = sorted(app.methods_serving(path) - {method.upper()})
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


def _json_body() -> tuple[dict[str, Any], bool]:
    """The body as a JSON object whatever its Content-Type (preprocessing.read_json), and
    whether it may hold booleans (see may_contain_booleans)."""
    event = app.event
    max_bytes = get_store().settings.max_body_bytes
    try:
        text = proxy.decoded_body(event, max_bytes)
    except proxy.BodyTooLarge as exc:
        raise ApiError(
            "PAYLOAD_TOO_LARGE",
            f"the request body is {exc.size} bytes; at most {max_bytes} are allowed",
        ) from None
    except ValueError:
        raise ApiError(
            "INVALID_JSON",
            "the request body is not valid base64-encoded UTF-8 (isBase64Encoded: only the "
            "base64 alphabet A-Z a-z 0-9 + / and = padding)",
        ) from None
    payload = read_json(text, proxy.content_type(event), max_bytes)
    return payload, may_contain_booleans(text)


def _predict(model: LoadedModel, batch) -> tuple[Any, float]:
    """The model's probabilities for the batch, and the milliseconds the invoke took."""
    started = time.perf_counter()
    # With TracingMode xray-sdk or otel: a subsegment (span) around the interpreter call, so a
    # trace shows model time apart from parsing and validation.
    with _subsegment("invoke"):
        probabilities = model.predict(batch)
    get_tracing().annotate("model_version", model.version)
    return probabilities, (time.perf_counter() - started) * 1000


def _record_request(
    model: LoadedModel,
    batch: np.ndarray,
    probabilities: np.ndarray,
    inference_ms: float,
    answers: list[dict[str, Any]] | None = None,
    value_range: tuple[float, float] | None = None,
) -> None:
    """The prediction's metrics (emf.request): timing, size and the drift monitor's figures
    (from classify's `answers` and the batch's checked `value_range` where the route has them)."""
    emf.request(
        metrics.namespace,
        _service(),
        model.name,
        str(model.version),
        _role(),
        model.labels,
        batch,
        probabilities,
        inference_ms,
        answers,
        value_range,
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


def _run(
    model: LoadedModel,
    signature: Signature,
    arrays: dict[str, np.ndarray],
    wanted: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Any signature of any model (mlcore.inference.run), timed, traced and counted: an image
    classifier's default signature as /predict counts it (the drift monitor's figures, and
    capture), anything else by its time and instances."""
    started = time.perf_counter()
    with _subsegment("invoke"):
        outputs = run(model.predictor, signature, arrays, wanted, _deadline())
    get_tracing().annotate("model_version", model.version)
    inference_ms = (time.perf_counter() - started) * 1000
    label_output = model.label_output
    if (
        model.spec is not None
        and signature.key == model.default_signature
        and label_output in outputs
    ):
        (batch,) = arrays.values()
        _record_request(model, batch, outputs[label_output], inference_ms)
        _capture(model, batch, outputs[label_output])
    else:
        first = next(iter(arrays.values()))
        instances = first.shape[0] if first.ndim else 1
        emf.tensors_request(
            metrics.namespace,
            _service(),
            model.name,
            str(model.version),
            _role(),
            instances,
            inference_ms,
        )
    return outputs


def _model_ref(model: LoadedModel) -> dict[str, Any]:
    return {"name": model.name, "version": model.version, "role": _role()}


# -- routes -------------------------------------------------------------------------------
# The one definition of what this function answers. template.yaml's Api events route these
# paths here (a test holds them together), and openapi.json is generated from these decorators
# (events/make_openapi.py, `make events`) with the documentation each passes from
# openapi_schemas: summaries, error responses and the request body schema.


def _at_each_version(method: str, template: str, documentation: dict, labels: bool = True):
    """Decorator: the route at the model ({at} empty), at one of its versions
    (/versions/{version}) and, with labels, at a version label (/labels/{label})."""
    places = ("", "/versions/{version}", *(("/labels/{label}",) if labels else ()))

    def register(handler):
        for at in places:
            app.route(method, template.replace("{at}", at), **documentation)(handler)
        return handler

    return register


@app.get("/health", **docs.HEALTH)
def health() -> dict[str, Any] | Response:
    """Open, so shallow: what this environment holds now, read from memory only: no registry
    read, no load started or waited for, no refresh, no listing (ModelStore.health,
    ModelChooser.canary_now, ModelSet.status). An unauthenticated caller therefore costs one
    short invocation, never a model load. 200 with status ok or degraded (a model is served:
    the deep health's fields) or starting (nothing served yet and nothing failed: no request
    of this environment has needed the model yet, or its first load runs); 503
    MODEL_UNAVAILABLE, with the same fields, once a load failed and nothing is served.
    GET /health/deep (behind the API's auth) loads and waits."""
    store = get_store()
    registry = store.health()
    _add_canary(registry, get_chooser().canary_now(store))
    models = _models_held(get_models().names_now())
    model = store.current
    name = store.settings.model_name
    answer = {
        "status": registry["status"],
        "model": {
            "name": name,
            "version": None if model is None else model.version,
            "role": STABLE,
        },
        "registry": registry,
        "models": models,
    }
    if registry["status"] != "unavailable":
        return answer
    why = registry["pointer_refused"] or registry["last_error"] or "its version was refused"
    error = ModelUnavailable(f"model '{name}' cannot be served here: {why}")
    emf.request_error(metrics.namespace, _service(), error.code, error.is_client_error, None)
    return Response(error.status, JSON, json.dumps({**answer, **error.body()}))


def _add_canary(registry: dict[str, Any], canary: dict[str, Any] | None) -> None:
    """The canary (version, state, why refused) in a health answer's registry report: a
    refused canary makes a status that was ok degraded (both healths, open and deep)."""
    if canary is None:
        return
    registry["canary"] = canary
    if "refused" in canary and registry["status"] == "ok":
        registry["status"] = "degraded"


def _models_held(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per served model, what this environment holds now (models.py: loaded on first use,
    evicted when others need the room), without loading any."""
    held = {entry["name"]: entry for entry in get_models().status()}
    return [
        held.get(name, {"name": name, "loaded": False, "version": None, "refused": {}})
        for name in names
    ]


@app.get("/health/deep", **docs.DEEP_HEALTH)
def deep_health() -> dict[str, Any]:
    """Behind the API's auth: the default model loaded (or its load waited for, within the
    deadline), a refresh started when due, the canary's load started, the registry listed
    where every model is served (ModelNames "*"). 200 while a verified model answers
    (status ok or degraded, with the default model's store's own report: ModelStore.health);
    503 MODEL_UNAVAILABLE while none can. `models`: as GET /health."""
    model = _served_model()
    registry = get_store().health()
    for entry in get_chooser().held(_deadline()):
        if entry.role == CANARY:  # its own store's verdict: loading, served, or refused
            canary = {"version": entry.version, "state": entry.state}
            if entry.refused:
                canary["refused"] = entry.problem
            _add_canary(registry, canary)
    models = _models_held(get_models().names(_deadline()))
    return {
        "status": registry["status"],
        "model": _model_ref(model),
        "registry": registry,
        "models": models,
    }


@functools.cache
def _openapi_text() -> str:
    with open(OPENAPI_FILE, encoding="utf-8") as f:
        return f.read()


@app.get("/openapi.json", **docs.OPENAPI_DOCUMENT)
def openapi_document():
    """The routes' document, with the request bodies of the model served now where one is
    (docs.served_document); the build-time one while none is (it never waits for a load)."""
    model = get_store().current
    if model is None:
        return Response(200, JSON, _openapi_text())
    return Response(200, JSON, _served_openapi(model, get_store().settings.max_instances))


_served_openapi_slot: list = [None, None, None]  # [model, max_instances, the document's text]


def _served_openapi(model: LoadedModel, max_instances: int) -> str:
    """Made once per model loaded (and again only when it changes)."""
    slot = _served_openapi_slot
    if slot[0] is not model or slot[1] != max_instances:
        document = docs.served_document(json.loads(_openapi_text()), model, max_instances)
        slot[:] = [model, max_instances, json.dumps(document)]
    return slot[2]


@functools.cache
def _page_text() -> str:
    with open(PAGE_FILE, encoding="utf-8") as f:
        return f.read()


@app.get("/", **docs.PAGE)
def page():
    return Response(200, HTML, _page_text(), headers=PAGE_HEADERS)


@app.post("/predict", **docs.PREDICT)
def predict() -> dict[str, Any]:
    payload, booleans_possible = _json_body()
    if "model" in payload:  # the model's name: a served one (models.py), else the default
        if not isinstance(payload["model"], str):
            raise ApiError(
                "INVALID_TYPE", "'model' must be the name of a served model, as a string"
            )
        _name(payload["model"])
    if "instances" in payload and "images" in payload:
        raise ApiError("AMBIGUOUS_INPUT", "send either 'instances' or 'images', not both")
    if "instances" not in payload and "images" not in payload:
        raise ApiError(
            "MISSING_FIELD",
            "the body needs 'instances' (arrays in the model's input shape) "
            "or 'images' (base64 PNG or JPEG strings)",
        )
    model = _predicting_model()
    if model.spec is None:
        return {"predictions": _predict_tensors(model, payload, booleans_possible), **_ref(model)}
    max_instances = get_store().settings.max_instances
    value_range = None
    if "instances" in payload:
        batch, value_range = instances_and_range(
            payload["instances"], model.spec, max_instances, booleans_possible=booleans_possible
        )
    else:
        batch = images_to_batch(payload["images"], model.spec, max_instances, _image_budget())
    probabilities, inference_ms = _predict(model, batch)
    predictions = classify(probabilities, model.labels)
    _record_request(model, batch, probabilities, inference_ms, predictions, value_range)
    _capture(model, batch, probabilities)
    return {"predictions": predictions, "model": _model_ref(model)}


def _ref(model: LoadedModel) -> dict[str, Any]:
    return {"model": _model_ref(model)}


def _predict_tensors(
    model: LoadedModel, payload: dict[str, Any], booleans_possible: bool
) -> list[dict[str, Any]]:
    """/predict for a generic model (prediction.generic_predictions), run as every signature
    is run here (_run: timed, traced, counted)."""
    return generic_predictions(
        model,
        payload,
        booleans_possible,
        get_store().settings.max_instances,
        lambda signature, arrays: _run(model, signature, arrays),
    )


@_at_each_version("POST", "/v1/models/{name}{at}:predict", docs.TFSERVING_PREDICT)
def tfserving_predict(
    name: str, version: str | None = None, label: str | None = None
) -> dict[str, Any]:
    _check_name(name)
    payload, booleans_possible = _json_body()
    model = _predicting_model(version, label)
    store = get_store()
    if model.spec is not None and payload.get("signature_name", "") in ("", DEFAULT_SIGNATURE):
        # an image classifier's one input: images ({"b64": ...}) or instances, as /predict
        # prepares them (instances of shape (H, W) or flat too)
        input_name = model.predictor.signature_input
        fmt, inputs = tfserving.predict_input(payload, [input_name])
        values = inputs[input_name]
        value_range = None
        if is_binary_batch(values):
            budget = _image_budget()
            batch = images_to_batch(values, model.spec, store.settings.max_instances, budget, fmt)
        else:
            batch, value_range = instances_and_range(
                values,
                model.spec,
                store.settings.max_instances,
                field=fmt,
                booleans_possible=booleans_possible,
            )
        probabilities, inference_ms = _predict(model, batch)
        _record_request(model, batch, probabilities, inference_ms, value_range=value_range)
        _capture(model, batch, probabilities)
        return tfserving.predict_response(fmt, {model.label_output: probabilities})
    key = tfserving.signature_name(payload, model.signatures, model.default_signature)
    signature = model.signatures[key]
    fmt, inputs = tfserving.predict_input(payload, signature.input_names)
    arrays = tfserving.input_arrays(
        signature, inputs, fmt, booleans_possible, store.settings.max_instances
    )
    outputs = _run(model, signature, arrays)
    return tfserving.predict_response(fmt, outputs)


@_at_each_version("GET", "/v1/models/{name}{at}", docs.TFSERVING_STATUS)
def tfserving_status(
    name: str, version: str | None = None, label: str | None = None
) -> dict[str, Any]:
    """Every version held (the stable one, a running canary) or the one the path names."""
    _check_name(name, version, label)
    entries = _served().chooser.held(_deadline())
    if version is not None or label is not None:
        entries = [find(entries, version, label)]
    return tfserving.model_status(
        [
            {"version": e.version, "state": e.state, "error": None if e.model else e.problem}
            for e in entries
        ]
    )


@_at_each_version("GET", "/v1/models/{name}{at}/metadata", docs.TFSERVING_METADATA)
def tfserving_metadata(
    name: str, version: str | None = None, label: str | None = None
) -> dict[str, Any]:
    _check_name(name, version, label)
    model = _predicting_model(version, label) if version or label else _served_model()
    return tfserving.model_metadata(
        name=model.name,
        version=model.version,
        signatures=model.signatures,
        expected_inputs=model.expected_inputs(),
        classifier=None
        if model.spec is None
        else {"labels": model.labels, "input": _input_kind(model.manifest["input"])},
    )


def _input_kind(spec: dict[str, Any]) -> dict[str, Any]:
    """What the page needs to know of the model's input: shape, colour, resize policy."""
    keys = ("shape", "color", "value_range", "preprocessing")
    return {key: spec[key] for key in keys if key in spec}


# -- the Open Inference Protocol (v2): oip.py, imported on the first v2 request ------------


@app.get("/v2", **docs.V2_SERVER)
def v2_server() -> dict[str, Any]:
    import oip

    return oip.server_metadata()


@app.get("/v2/health/live", **docs.V2_LIVE)
def v2_live() -> dict[str, Any]:
    return {"live": True}


@app.get("/v2/health/ready", **docs.V2_READY)
def v2_ready() -> dict[str, Any]:
    _served_model()  # 503 MODEL_UNAVAILABLE while none can be served
    return {"ready": True}


@_at_each_version("GET", "/v2/models/{name}{at}/ready", docs.V2_MODEL_READY, labels=False)
def v2_model_ready(name: str, version: str | None = None) -> dict[str, Any]:
    _check_name(name)
    model = _predicting_model(version) if version else _served_model()
    return {"name": model.name, "ready": True}


@_at_each_version("GET", "/v2/models/{name}{at}", docs.V2_MODEL_METADATA, labels=False)
def v2_model_metadata(name: str, version: str | None = None) -> dict[str, Any]:
    import oip

    _check_name(name)
    model = _predicting_model(version) if version else _served_model()
    versions = [e.version for e in _served().chooser.held(_deadline()) if e.model is not None]
    return oip.model_metadata(model.name, versions, model.signatures[model.default_signature])


@_at_each_version("POST", "/v2/models/{name}{at}/infer", docs.V2_INFER, labels=False)
def v2_infer(name: str, version: str | None = None) -> dict[str, Any]:
    import oip

    _check_name(name)
    if cors.header(app.event.get("headers"), oip.BINARY_HEADER) is not None:
        raise ApiError("UNSUPPORTED_EXTENSION", oip.NO_BINARY)
    payload, booleans_possible = _json_body()
    model = _predicting_model(version)
    signature = model.signatures[model.default_signature]
    max_instances = get_store().settings.max_instances
    request_id, arrays, wanted = oip.infer_request(
        payload, signature, max_instances, booleans_possible
    )
    outputs = _run(model, signature, arrays, wanted)
    return oip.infer_response(model.name, model.version, request_id, signature, outputs)


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
# SnapStart preloads the default model (ModelName) only: the others load on first use, as their
# budget allows; after a restore every store made so far gets new clients (models.py).
snapstart.register(
    lambda: get_store(),
    logger,
    also_restore=lambda: (get_chooser().restored(), get_models().restored()),
)


def with_powertools(handler):
    """What Powertools' @logger.inject_lambda_context and
    @metrics.log_metrics(capture_cold_start_metric=True) do around a handler, through the same
    Logger and Metrics objects and Powertools' own cold-start flag, with their per-request
    cost cut to what changes per request: the context's log keys in one append_keys (the
    decorator builds a dataclass of them and reads the environment on every request), and
    Metrics flushed only when this request added a metric (log_metrics flushes every time and
    warns when there is nothing to flush, which is most requests here: their metrics are emf's
    own documents). About 18 us of a batch-1 request's 170 (docs/performance.md); the log
    lines and the ColdStart document are held equal to what the decorators write
    (tests/unit/function/test_function_handler.py)."""

    @functools.wraps(handler)
    def invoke(event: Any, context: LambdaContext) -> dict[str, Any]:
        cold = cold_start.is_cold_start  # False under provisioned concurrency
        cold_start.is_cold_start = False
        logger.append_keys(
            cold_start=cold,
            function_name=context.function_name,
            function_memory_size=context.memory_limit_in_mb,
            function_arn=context.invoked_function_arn,
            function_request_id=context.aws_request_id,
        )
        try:
            response = handler(event, context)
            if cold:
                metrics.provider.add_cold_start_metric(context)
            return response
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return invoke


@with_powertools
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return get_tracing().handler(answer)(event, context)  # wrapped only with the X-Ray SDK


def answer(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Every event gets an HTTP answer in its own payload format: a REST API (1.0) or HTTP API
    (2.0) proxy event goes to the routes with this invocation's deadline; anything else is a
    400 UNSUPPORTED_EVENT (see proxy.py)."""
    # API Gateway's request id in every log line (Powertools' correlation_id_path would find it
    # with a JMESPath search on every request), and no model yet: this invocation's are set
    # when chosen (Powertools leaves a key whose value is None out of the line)
    logger.append_keys(
        correlation_id=proxy.request_id(event), model_name=None, model_version=None, model_role=None
    )
    kind, problem = proxy.recognise(event)
    if problem is not None:
        error = ApiError("UNSUPPORTED_EVENT", problem)
        return kind.answer(_nosniff(proxy_response(_error_response(error))))
    request = kind.request(event)  # the REST API's (1.0) shape, whatever the event's format
    settings = get_store().settings
    allowed = settings.cors_allow_origins
    origin = cors.header(request.get("headers"), "origin") if allowed else None
    if allowed and request["httpMethod"].upper() == "OPTIONS":
        return kind.answer(_nosniff(proxy_response(_preflight(allowed, origin))))
    app.context["deadline"] = Deadline.for_invocation(
        context, settings.deadline_margin_seconds, settings.deadline_seconds
    )
    response = _within_lambda_limit(app.resolve(request, context))
    for name, value in cors.response_headers(allowed, origin).items():
        response["multiValueHeaders"][name] = [value]
    return kind.answer(_nosniff(response))


def _nosniff(response: dict[str, Any]) -> dict[str, Any]:
    """Every answer says its Content-Type is what it is: a browser never sniffs a JSON error
    (which may echo a caller's text) into HTML (OWASP's secure headers)."""
    response["multiValueHeaders"]["X-Content-Type-Options"] = ["nosniff"]
    return response


def _preflight(allowed: tuple[str, ...], origin: str | None) -> Response:
    """A CORS preflight (cors.py): 204 with what the origin may do, or 403 for another."""
    headers = cors.preflight_headers(allowed, origin)
    if headers is None:
        shown = "no Origin header" if origin is None else f"origin {origin[:80]!r}"
        listed = "any origin" if allowed == (cors.ANY,) else ", ".join(allowed)
        return _error_response(
            ApiError(
                "CORS_NOT_ALLOWED",
                f"cross-origin requests from {shown} are not allowed; this API allows "
                f"{listed} (template parameter CorsAllowOrigins)",
            )
        )
    return Response(204, JSON, "", headers=headers)


# Lambda returns at most 6 MB from a synchronous invocation (the answer's JSON: status,
# headers and body); beyond it API Gateway would answer 502.
MAX_RESPONSE_BYTES = 6_000_000


def _within_lambda_limit(response: dict[str, Any]) -> dict[str, Any]:
    """The answer, or a 413 RESPONSE_TOO_LARGE in its place if Lambda could not return it."""
    body = response["body"]
    size = len(body) if len(body) * 4 <= MAX_RESPONSE_BYTES else len(body.encode())
    if size <= MAX_RESPONSE_BYTES:
        return response
    return proxy_response(
        _error_response(
            ApiError(
                "RESPONSE_TOO_LARGE",
                f"the answer is {size:,} bytes; Lambda returns at most {MAX_RESPONSE_BYTES:,}: "
                "send fewer instances, or ask for fewer outputs",
            )
        )
    )
