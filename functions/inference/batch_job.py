"""Batch inference's pure parts: the two events the state machine (statemachine/batch.asl.json)
sends the batch function, checked as hostile input; a job's prefixes; the answer and the record
of each object key; where a batch's records go. batch.py reads, predicts and writes.

The events:

- Job, once per execution: ``{"action": "load_model", "execution": NAME, "job": INPUT}``, INPUT
  being the execution's input ``{"input_prefix": "photos/", "output_prefix": "results/",
  "version": "latest" or N}`` (version optional). Answered with the job as checked: the model
  it uses (the stable version unless one is given), its input prefix and where its results go.
- ScoreBatch, once per child execution: what the Distributed Map's ItemBatcher makes,
  ``{"Items": [{"Key", "Size", "Etag", "LastModified", "StorageClass"}, ...], "BatchInput":
  {"model": {"name", "version"}, "results_prefix": ...}}`` (an item is one object of S3's
  ListObjectsV2, as the ItemReader lists it).

What a job writes under OUTPUT (results_prefix = OUTPUT/<execution name>/):

    records/part-<16 hex of the sha256 of the batch's keys>.jsonl   one line per key
    map-run/<map run id>/manifest.json, SUCCEEDED_0.json, ...     Step Functions' ResultWriter

A batch's file name comes from its keys, so a retried batch writes the same file again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from config import BatchSettings
from errors import ApiError
from mlcore.inference import TensorError, run
from mlcore.registry import check_version
from prediction import classify, generic_predictions
from preprocessing import ImageBudget, decode_image, may_contain_booleans, parse_json_body

LOAD_MODEL = "load_model"  # the Job state's action
LATEST = "latest"
MAX_BATCH_ITEMS = 1000  # template.yaml: BatchSize's MaxValue (a test holds them equal)
MAX_KEY_BYTES = 1024  # S3's longest key
# Step Functions' execution names: 1 to 80 characters, none of them a slash (or whitespace,
# brackets, wildcards, " # % \ ^ | ~ ` $ & , ; :), so a name is one key segment.
EXECUTION_NAME = re.compile(r"[^\s/<>{}\[\]?*\"#%\\^|~`$&,;:]{1,80}")
RECORDS_FOLDER = "records/"
MAP_RUN_FOLDER = "map-run"  # ResultWriter's Prefix: Step Functions adds /<map run id>/...
RECORDS_CONTENT_TYPE = "application/x-ndjson"
# Answer fields a record keeps (prediction.classify's, without the probability of every class)
ANSWER_FIELDS = ("label", "class_id", "confidence", "top")


class InvalidJob(ValueError):
    """The execution's input cannot run as a job; the Job state fails with this message (its
    error name is the class name: the definition does not retry it)."""


class InvalidBatch(ValueError):
    """A ScoreBatch event that the state machine would not send; not retried."""


class DeadlineExceeded(Exception):
    """The batch would outlast its invocation: it stops before Lambda's timeout, writes
    nothing, and Step Functions retries it (a smaller BatchSize or a longer BatchFunctionTimeout
    cures a batch that never fits)."""


@dataclass(frozen=True)
class Job:
    version: int | None  # None: the stable version (the pointer's, or the template's pin)
    input_prefix: str
    results_prefix: str

    def answer(self, model_name: str, model_version: int) -> dict[str, Any]:
        """The Job state's result (ResultSelector picks these)."""
        return {
            "model": {"name": model_name, "version": model_version},
            "input_prefix": self.input_prefix,
            "results_prefix": self.results_prefix,
            "map_run_prefix": self.results_prefix + MAP_RUN_FOLDER,
        }


@dataclass(frozen=True)
class Item:
    key: str
    size: int


@dataclass(frozen=True)
class Batch:
    items: tuple[Item, ...]
    model_name: str
    model_version: int
    results_prefix: str

    @property
    def model_ref(self) -> dict[str, Any]:
        return {"name": self.model_name, "version": self.model_version}

    @property
    def records_key(self) -> str:
        digest = hashlib.sha256("\n".join(i.key for i in self.items).encode()).hexdigest()
        return f"{self.results_prefix}{RECORDS_FOLDER}part-{digest[:16]}.jsonl"


def is_load_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("action") == LOAD_MODEL


def _text(value: Any, what: str, error: type[ValueError]) -> str:
    if not isinstance(value, str):
        raise error(f"{what} must be a string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise error(f"{what} is longer than S3's {MAX_KEY_BYTES} bytes")
    return value


def _within(value: Any, what: str, root: str, setting: str, error: type[ValueError]) -> str:
    """A key or prefix (a string of at most S3's key length) under the stack's `root`."""
    prefix = _text(value, what, error).lstrip("/")
    if not prefix.startswith(root):
        raise error(
            f"{what} {prefix!r} is outside the prefix this stack may use ({root!r}, template "
            f"parameter {setting}); choose a prefix that starts with it"
        )
    return prefix


def parse_version(value: Any) -> int | None:
    """None (the stable version) for a missing, null or "latest" version, else a positive
    integer; an InvalidJob naming what is allowed."""
    if value is None or value == LATEST:
        return None
    try:
        return check_version(value)
    except ValueError:
        raise InvalidJob(
            f"version {value!r} is not a version: use 'latest' or a published version number"
        ) from None


def check_job(event: dict[str, Any], settings: BatchSettings) -> Job:
    """The Job event's job, checked: prefixes within what the stack may use, results not inside
    the job's own input, a version that can be one."""
    execution = event.get("execution")
    if not isinstance(execution, str) or not EXECUTION_NAME.fullmatch(execution):
        raise InvalidJob("the event has no valid execution name (the state machine sends it)")
    job = event.get("job")
    if not isinstance(job, dict):
        raise InvalidJob(
            'the execution\'s input must be a JSON object: {"input_prefix": "...", '
            '"output_prefix": "...", "version": "latest"}'
        )
    for field in ("input_prefix", "output_prefix"):
        if field not in job:
            raise InvalidJob(f"the execution's input has no '{field}'")
    input_prefix = _within(
        job["input_prefix"], "input_prefix", settings.input_prefix, "BatchInputPrefix", InvalidJob
    )
    output = _within(
        job["output_prefix"],
        "output_prefix",
        settings.output_prefix,
        "BatchOutputPrefix",
        InvalidJob,
    ).strip("/")
    results_prefix = f"{output}/{execution}/" if output else f"{execution}/"
    if settings.input_bucket == settings.output_bucket and results_prefix.startswith(input_prefix):
        raise InvalidJob(
            f"output_prefix {output!r} lies inside input_prefix {input_prefix!r} in the same "
            "bucket: a later job over that input would read these results as images; write "
            "them elsewhere"
        )
    return Job(parse_version(job.get("version")), input_prefix, results_prefix)


def parse_batch(event: Any, settings: BatchSettings, model_name: str) -> Batch:
    """The ScoreBatch event, checked: at most MAX_BATCH_ITEMS objects, each key within the
    stack's input prefix, the model this function serves, results within the output prefix."""
    if not isinstance(event, dict) or not isinstance(event.get("Items"), list):
        raise InvalidBatch('expected {"Items": [...], "BatchInput": {...}} (ItemBatcher\'s form)')
    raw_items = event["Items"]
    if not 1 <= len(raw_items) <= MAX_BATCH_ITEMS:
        raise InvalidBatch(f"a batch holds 1 to {MAX_BATCH_ITEMS} items, not {len(raw_items)}")
    items = []
    for raw in raw_items:
        if not isinstance(raw, dict):
            raise InvalidBatch("every item must be an object with 'Key' and 'Size'")
        key = _within(
            raw.get("Key"), "an item's Key", settings.input_prefix, "BatchInputPrefix", InvalidBatch
        )
        size = raw.get("Size")
        if type(size) is not int or size < 0:
            raise InvalidBatch(f"item {key!r}: Size must be an integer >= 0")
        items.append(Item(key, size))
    batch_input = event.get("BatchInput")
    model = batch_input.get("model") if isinstance(batch_input, dict) else None
    if not isinstance(model, dict) or model.get("name") != model_name:
        raise InvalidBatch(f"BatchInput.model must name this function's model, {model_name!r}")
    try:
        version = check_version(model.get("version"))
    except ValueError as exc:
        raise InvalidBatch(f"BatchInput.model: {exc}") from None
    results_prefix = _within(
        batch_input.get("results_prefix"),
        "results_prefix",
        settings.output_prefix,
        "BatchOutputPrefix",
        InvalidBatch,
    )
    if not results_prefix.endswith("/"):
        raise InvalidBatch("results_prefix must end with '/'")
    return Batch(tuple(items), model_name, version, results_prefix)


# -- one answer per object ----------------------------------------------------------------------


def answer_objects(
    model: Any,
    objects: Sequence[tuple[str, bytes]],
    budget: ImageBudget,
    max_instances: int,
    max_body_bytes: int,
) -> list[dict[str, Any] | ApiError]:
    """Each object's answer, in order, or the ApiError that says why it has none: the per-key
    prediction, the one place a model's kind decides how an object is read.

    An image classifier: each object a PNG or JPEG, decoded and prepared as /predict prepares
    its images (preprocessing.decode_image: the same header, pixel and JPEG checks, the
    manifest's resize policy), those that decode predicted together (at most max_instances
    per interpreter call), each answered as /predict answers (label, class_id, confidence,
    top). A generic model (any other TFLite model): each object a JSON body as /predict takes
    for it ({"instances": [...]}, at most max_body_bytes), answered as /predict answers it
    ({"predictions": [...]}: every output by name, and the label for a model with labels)."""
    if model.spec is None:
        return [
            answer_json(model, key, data, budget, max_instances, max_body_bytes)
            for key, data in objects
        ]
    answers: list[dict[str, Any] | ApiError | None] = []
    arrays: list[np.ndarray] = []
    for key, data in objects:
        _check_time(budget, key)
        try:
            arrays.append(decode_image(data, model.spec, budget, key))
            answers.append(None)  # answered below, in order
        except ApiError as exc:
            answers.append(exc)
    predicted: list[dict[str, Any]] = []
    for start in range(0, len(arrays), max_instances):
        probabilities = model.predict(np.stack(arrays[start : start + max_instances]))
        predicted += classify(probabilities, model.labels)
    found = iter(predicted)
    return [
        {k: v for k, v in next(found).items() if k in ANSWER_FIELDS} if a is None else a
        for a in answers
    ]


def answer_json(
    model: Any, key: str, data: bytes, budget: ImageBudget, max_instances: int, max_bytes: int
) -> dict[str, Any] | ApiError:
    """A generic model's answer to one object: a JSON body of /predict, run as /predict runs
    it (prediction.generic_predictions), or the ApiError of the API's own code."""
    _check_time(budget, key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ApiError("INVALID_JSON", f"{key} is not UTF-8 text; send a JSON object")
    try:
        payload = parse_json_body(text, max_bytes)
        predictions = generic_predictions(
            model,
            payload,
            may_contain_booleans(text),
            max_instances,
            lambda signature, arrays: run(model.predictor, signature, arrays),
        )
    except ApiError as exc:
        return exc
    except TensorError as exc:
        return ApiError(exc.code, exc.message)
    return {"predictions": predictions}


def _check_time(budget: ImageBudget, key: str) -> None:
    if budget.deadline is not None and budget.deadline.expired:
        raise DeadlineExceeded(f"the invocation's time ran out before {key} was read")


class ObjectError(Exception):
    """An object that has no answer for a reason of its own, not of its content (gone since it
    was listed, refused by S3, too large to read): a record with this code, never a failed
    batch. Its codes are the batch's own (docs/batch.md); a content's are the API's."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


Answer = dict[str, Any] | ApiError | ObjectError


def record(key: str, model_ref: dict[str, Any], answer: Answer) -> dict[str, Any]:
    """One line of the results: the key, the model that answered, and its answer or the
    error (a machine-readable code and a message saying what is allowed)."""
    if isinstance(answer, ApiError | ObjectError):
        return {
            "key": key,
            "model": model_ref,
            "error": {"code": answer.code, "message": answer.message},
        }
    return {"key": key, "model": model_ref, **answer}


def jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    """JSON Lines: one compact JSON object per line, each ending with a newline."""
    return b"".join(orjson.dumps(r) + b"\n" for r in records)
