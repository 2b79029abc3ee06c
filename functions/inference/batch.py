"""The batch function (template.yaml: BatchFunction, Handler batch.lambda_handler): the API's
package, layer, model store, verification, budgets and metrics, serving the batch jobs' state
machine (statemachine/batch.asl.json; docs/batch.md). A function of its own, so that a job
draws on the account's unreserved concurrency, bounded by the map's MaxConcurrency, and never
on the API's reservation.

Its two events are batch_job's. A ScoreBatch event's objects are read WINDOW at a time (at most
READERS GETs at once, each object at most BatchMaxObjectBytes), answered (batch_job.
answer_objects), and the batch's records written as one JSON Lines file. An object that cannot
be answered is a record with its error code, never a failed batch; the batch fails (and Step
Functions retries it) only when the registry, S3 or time fail it: its model does not load, a
read fails for a reason that is not the object's own, the write fails, or the invocation would
run out of time.
"""

from __future__ import annotations

import collections
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

import app  # the API's store (its hooks report each load), Logger and Metrics
import emf
from batch_job import (
    RECORDS_CONTENT_TYPE,
    Batch,
    DeadlineExceeded,
    Item,
    ObjectError,
    answer_objects,
    check_job,
    is_load_event,
    jsonl,
    parse_batch,
    record,
)
from config import BatchSettings, load_batch_settings
from mlcore.deadline import Deadline
from model_store import LoadedModel, ModelStore, create_s3_client, object_missing
from preprocessing import ImageBudget

READERS = 8  # GETs in flight at once
LONGEST_INVOCATION_SECONDS = 900.0  # Lambda's: the deadline where no context tells the time left
WINDOW = 16  # objects read, decoded and predicted together: what one batch holds in memory


@functools.cache
def get_batch_settings() -> BatchSettings:
    """Read once per execution environment. Tests replace this function."""
    return load_batch_settings()


@functools.cache
def get_client() -> Any:
    """The objects' S3 client (s3_reader: obstore, bounded timeouts), made on first use."""
    return create_s3_client()


_pinned: dict[int, ModelStore] = {}  # the model of the job this environment serves


def model_for(version: int, deadline: Deadline) -> LoadedModel:
    """The verified model of `version`, waiting for a load at most until the deadline
    (ModelUnavailable after): a store of the API's registry pinned to it, loaded once per
    environment and kept while its jobs come (a job keeps its version to the end, even when
    the pointer moves)."""
    if version not in _pinned:
        _pinned.clear()  # another job's version: the previous one goes
        _pinned[version] = app.get_store().pinned(version)
    return _pinned[version].get(deadline)


@app.with_powertools
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)


def handle(event: Any, context: Any) -> dict[str, Any]:
    """The Job event: the job checked and its model loaded; a ScoreBatch event: its records."""
    settings = app.get_store().settings
    # the whole invocation, less the answer's margin (DeadlineSeconds bounds the API's requests)
    margin = settings.deadline_margin_seconds
    deadline = Deadline.for_invocation(context, margin, LONGEST_INVOCATION_SECONDS)
    if is_load_event(event):
        job = check_job(event, get_batch_settings())
        model = model_for(job.version or app.get_store().stable_version(), deadline)
        answer = job.answer(model.name, model.version)
        app.logger.info("job checked", extra=answer)
        return answer
    batch = parse_batch(event, get_batch_settings(), settings.model_name)
    model = model_for(batch.model_version, deadline)
    return score(batch, model, deadline)


def score(batch: Batch, model: LoadedModel, deadline: Deadline) -> dict[str, Any]:
    """Every object of the batch answered or refused, one record each, written as one file."""
    started = time.perf_counter()
    settings, batch_settings = app.get_store().settings, get_batch_settings()
    budget = ImageBudget(settings.max_image_pixels, settings.max_batch_pixels, deadline)
    records = []
    with ThreadPoolExecutor(READERS, thread_name_prefix="batch-read") as pool:
        for start in range(0, len(batch.items), WINDOW):
            if deadline.expired:
                raise DeadlineExceeded(
                    f"the invocation's time ran out after {start} of {len(batch.items)} objects"
                )
            window = batch.items[start : start + WINDOW]
            contents = list(pool.map(lambda item: read_object(item, batch_settings), window))
            readable = [(i.key, c) for i, c in zip(window, contents, strict=True) if is_bytes(c)]
            answers = iter(
                answer_objects(
                    model, readable, budget, settings.max_instances, settings.max_body_bytes
                )
            )
            for item, content in zip(window, contents, strict=True):
                answer = next(answers) if is_bytes(content) else content
                records.append(record(item.key, batch.model_ref, answer))
    get_client().put_object(
        Bucket=batch_settings.output_bucket,
        Key=batch.records_key,
        Body=jsonl(records),
        ContentType=RECORDS_CONTENT_TYPE,
    )
    errors = collections.Counter(r["error"]["code"] for r in records if "error" in r)
    answered = len(records) - sum(errors.values())
    duration_ms = (time.perf_counter() - started) * 1000
    emf.batch(
        app.metrics.namespace,
        app._service(),
        str(model.version),
        len(records),
        answered,
        errors,
        duration_ms,
    )
    summary = {
        "records": f"s3://{batch_settings.output_bucket}/{batch.records_key}",
        "objects": len(records),
        "answered": answered,
        "errors": dict(sorted(errors.items())),
    }
    extra = {**summary, "model_version": model.version, "duration_ms": round(duration_ms, 1)}
    app.logger.info("batch scored", extra=extra)
    return summary


def is_bytes(content: bytes | ObjectError) -> bool:
    return isinstance(content, bytes)


def read_object(item: Item, settings: BatchSettings) -> bytes | ObjectError:
    """The object's bytes, or the ObjectError of an object that cannot be read for a reason of
    its own; any other failure of S3 raises, failing the batch."""
    if item.size > settings.max_object_bytes:
        return too_large(item.size, settings)
    try:
        response = get_client().get_object(Bucket=settings.input_bucket, Key=item.key)
    except Exception as exc:
        refusal = read_refusal(exc)
        if refusal is None:
            raise
        return refusal
    body = response["Body"]
    try:
        size = response.get("ContentLength", 0)
        if size > settings.max_object_bytes:  # it grew after it was listed
            return too_large(size, settings)
        return body.read()
    finally:
        body.close()


def read_refusal(exc: Exception) -> ObjectError | None:
    """Why S3 refused this one object: it is gone, or this function may not read it (another
    KMS key, a bucket policy); None for anything else (S3 unreachable, throttled)."""
    if object_missing(exc):
        return ObjectError("OBJECT_NOT_FOUND", "the object was deleted after the job listed it")
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    if type(exc).__name__ == "PermissionDeniedError" or code in ("AccessDenied", "403"):
        return ObjectError(
            "ACCESS_DENIED",
            "S3 refused to read the object (its KMS key or a bucket policy does not allow this "
            "stack's batch function)",
        )
    return None


def too_large(size: int, settings: BatchSettings) -> ObjectError:
    return ObjectError(
        "OBJECT_TOO_LARGE",
        f"the object is {size:,} bytes; at most {settings.max_object_bytes:,} bytes are read "
        "per object (template parameter BatchMaxObjectBytes)",
    )
