"""The batch function's parts without a network: the state machine's events checked as hostile
input (batch_job), each object's answer, the records and their file, and the handler over an
in-memory S3 where S3 itself fails (that fails the batch, for Step Functions to retry) or
refuses one object (that is a record)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.function_support import FIXTURE_DIR, generic_model

BODY_BYTES = 1_000_000  # /predict's body budget, for a generic model's JSON objects

SETTINGS = dict(
    input_bucket="in",
    input_prefix="input/",
    output_bucket="out",
    output_prefix="results/",
    max_object_bytes=100_000,
)


def settings(**overrides):
    from config import BatchSettings

    return BatchSettings(**{**SETTINGS, **overrides})


def job_event(execution="exec-1", **job):
    return {
        "action": "load_model",
        "execution": execution,
        "job": {"input_prefix": "input/photos/", "output_prefix": "results/run", **job},
    }


def digit_png(index: int) -> bytes:
    digit = np.load(FIXTURE_DIR / "digits.npz")["x"][index]
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(digit, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


# -- the Job event ---------------------------------------------------------------------------


def test_a_job_writes_into_a_folder_named_after_its_execution():
    from batch_job import check_job

    job = check_job(job_event(), settings())
    assert (job.version, job.input_prefix, job.results_prefix) == (
        None,
        "input/photos/",
        "results/run/exec-1/",
    )
    assert job.answer("mnist", 7) == {
        "model": {"name": "mnist", "version": 7},
        "input_prefix": "input/photos/",
        "results_prefix": "results/run/exec-1/",
        "map_run_prefix": "results/run/exec-1/map-run",
    }


@pytest.mark.parametrize(
    "value, version",
    [(None, None), ("latest", None), (12, 12), ("12", 12)],
)
def test_a_job_uses_the_stable_version_unless_it_names_one(value, version):
    from batch_job import check_job

    assert check_job(job_event(version=value), settings()).version == version


@pytest.mark.parametrize("value", [0, -3, True, 1.5, "newest", "\u0661\u0662", [], {}])
def test_a_version_that_cannot_be_one_is_refused_naming_what_is(value):
    from batch_job import InvalidJob, check_job

    with pytest.raises(InvalidJob, match="'latest' or a published version number"):
        check_job(job_event(version=value), settings())


@pytest.mark.parametrize(
    "job, message",
    [
        ({"input_prefix": "photos/"}, "input_prefix 'photos/' is outside .* BatchInputPrefix"),
        ({"output_prefix": "elsewhere/"}, "outside .* BatchOutputPrefix"),
        ({"input_prefix": 7}, "input_prefix must be a string"),
        ({"output_prefix": "results/" + "x" * 1100}, "longer than S3's 1024 bytes"),
    ],
)
def test_a_job_outside_what_the_stack_may_read_or_write_is_refused(job, message):
    from batch_job import InvalidJob, check_job

    with pytest.raises(InvalidJob, match=message):
        check_job(job_event(**job), settings())


def test_a_job_must_name_both_prefixes_and_be_an_object():
    from batch_job import InvalidJob, check_job

    with pytest.raises(InvalidJob, match="has no 'output_prefix'"):
        check_job(
            {"action": "load_model", "execution": "e", "job": {"input_prefix": "input/"}},
            settings(),
        )
    with pytest.raises(InvalidJob, match="must be a JSON object"):
        check_job({"action": "load_model", "execution": "e", "job": "input/"}, settings())


@pytest.mark.parametrize("name", ["", "a/b", "x" * 81, "two words", None, 5])
def test_an_execution_name_that_is_not_one_key_segment_is_refused(name):
    from batch_job import InvalidJob, check_job

    with pytest.raises(InvalidJob, match="execution name"):
        check_job(job_event(execution=name), settings())


def test_results_inside_the_jobs_own_input_in_one_bucket_are_refused():
    from batch_job import InvalidJob, check_job

    one_bucket = settings(output_bucket="in", input_prefix="", output_prefix="")
    with pytest.raises(InvalidJob, match="lies inside input_prefix"):
        check_job(job_event(input_prefix="data/", output_prefix="data/results"), one_bucket)
    job = check_job(job_event(input_prefix="data/in/", output_prefix="data/out"), one_bucket)
    assert job.results_prefix == "data/out/exec-1/"
    # in two buckets the same prefixes cannot meet
    job = check_job(
        job_event(input_prefix="", output_prefix=""), settings(input_prefix="", output_prefix="")
    )
    assert job.results_prefix == "exec-1/"


# -- the ScoreBatch event ----------------------------------------------------------------------


def batch_event(keys=("input/a.png", "input/b.png"), **batch_input):
    items = [{"Key": k, "Size": 10, "Etag": '"e"', "StorageClass": "STANDARD"} for k in keys]
    batch_input = {
        "model": {"name": "mnist", "version": 7},
        "results_prefix": "results/e/",
        **batch_input,
    }
    return {"Items": items, "BatchInput": batch_input}


def test_a_batch_event_is_read_as_the_item_batcher_makes_it():
    from batch_job import parse_batch

    batch = parse_batch(batch_event(), settings(), "mnist")
    assert [i.key for i in batch.items] == ["input/a.png", "input/b.png"]
    assert (batch.model_version, batch.results_prefix) == (7, "results/e/")
    key = batch.records_key
    assert key.startswith("results/e/records/part-") and len(key.rsplit("-", 1)[1]) == 22
    assert parse_batch(batch_event(), settings(), "mnist").records_key == key  # a retry's
    other = parse_batch(batch_event(("input/a.png",)), settings(), "mnist").records_key
    assert other != key


@pytest.mark.parametrize(
    "event, message",
    [
        ([], "ItemBatcher's form"),
        ({"Items": "input/a.png"}, "ItemBatcher's form"),
        ({"Items": []}, "1 to 1000 items, not 0"),
        ({"Items": [{"Key": "input/a", "Size": 1}] * 1001}, "1 to 1000 items, not 1001"),
        ({"Items": ["input/a.png"]}, "every item must be an object"),
        ({"Items": [{"Size": 1}]}, "Key must be a string"),
        ({"Items": [{"Key": "../etc/passwd", "Size": 1}]}, "outside the prefix"),
        ({"Items": [{"Key": "input/a", "Size": -1}]}, "Size must be an integer >= 0"),
        ({"Items": [{"Key": "input/a", "Size": True}]}, "Size must be an integer >= 0"),
        ({"Items": [{"Key": "input/a", "Size": 1}]}, "must name this function's model"),
    ],
)
def test_a_batch_event_the_state_machine_would_not_send_is_refused(event, message):
    from batch_job import InvalidBatch, parse_batch

    with pytest.raises(InvalidBatch, match=message):
        parse_batch(event, settings(), "mnist")


@pytest.mark.parametrize(
    "batch_input, message",
    [
        ({"model": {"name": "other", "version": 7}}, "must name this function's model, 'mnist'"),
        ({"model": {"name": "mnist", "version": "7.0"}}, "must be a positive integer"),
        ({"results_prefix": "elsewhere/e/"}, "outside the prefix"),
        ({"results_prefix": "results/e"}, "must end with '/'"),
    ],
)
def test_a_batch_for_another_model_or_place_is_refused(batch_input, message):
    from batch_job import InvalidBatch, parse_batch

    with pytest.raises(InvalidBatch, match=message):
        parse_batch(batch_event(**batch_input), settings(), "mnist")


# -- answers and records ----------------------------------------------------------------------


@pytest.fixture
def model(manifest, model_bytes):
    from mlcore.images import InputSpec
    from mlcore.predictor import Predictor
    from model_store import LoadedModel

    predictor = Predictor.from_bytes(model_bytes, manifest)
    return LoadedModel(
        "mnist", manifest["version"], manifest, predictor, InputSpec.from_manifest(manifest),
        [str(x) for x in manifest["labels"]], None,
    )  # fmt: skip


def budget(deadline=None):
    from preprocessing import ImageBudget

    return ImageBudget(10_000_000, 10_000_000, deadline)


def test_each_object_is_answered_in_order_and_a_bad_one_has_its_error(model):
    from batch_job import answer_objects
    from errors import ApiError

    objects = [("a", digit_png(0)), ("b", b"GIF89a..."), ("c", digit_png(1))]
    answers = answer_objects(model, objects, budget(), 256, BODY_BYTES)
    assert set(answers[0]) == {"label", "class_id", "confidence", "top"}
    assert isinstance(answers[1], ApiError) and answers[1].code == "INVALID_IMAGE"
    assert answers[1].message.startswith("b could not be decoded")
    expected = np.load(FIXTURE_DIR / "digits.npz")["expected"][:2].tolist()
    assert [answers[0]["class_id"], answers[2]["class_id"]] == expected
    # in interpreter calls of one image each, the same answers
    assert answer_objects(model, objects, budget(), 1, BODY_BYTES)[::2] == answers[::2]


def test_decoding_stops_when_the_invocations_time_has_run_out(model):
    from batch_job import DeadlineExceeded, answer_objects
    from mlcore.deadline import Deadline

    with pytest.raises(DeadlineExceeded, match="before a was read"):
        answer_objects(model, [("a", digit_png(0))], budget(Deadline(0)), 256, BODY_BYTES)


def generic(file: str, labels: bool = False):
    from mlcore.generic import parse
    from mlcore.predictor import Predictor
    from model_store import LoadedModel

    manifest, content = generic_model(file, "pair", labels=labels)
    parsed = parse(manifest)
    predictor = Predictor.from_bytes(content, None)
    return LoadedModel(
        "pair", manifest["version"], manifest, predictor, None, list(parsed.labels or []), None,
        generic=parsed,
    )  # fmt: skip


@pytest.mark.parametrize("labels", [False, True])
def test_a_generic_models_object_is_a_predict_body_answered_as_predict_answers(labels):
    """A model that is not an image classifier: each object is a JSON body of /predict, its
    record /predict's predictions (every output by name; label and confidence with labels)."""
    from batch_job import answer_objects
    from mlcore.inference import run
    from prediction import generic_predictions

    model = generic("pair-float32.tflite", labels=labels)
    body = {"instances": [{"features": [0.5] * 6, "context": [0.1, 0.2, 0.3]}] * 2}
    (answer,) = answer_objects(model, [("a.json", json.dumps(body).encode())], budget(), 256,
                               BODY_BYTES)  # fmt: skip
    direct = generic_predictions(model, body, False, 256, lambda s, a: run(model.predictor, s, a))
    assert answer == {"predictions": direct} and len(direct) == 2
    assert set(direct[0]["outputs"]) == {"classes", "score"}
    assert ("label" in direct[0]) is labels


@pytest.mark.parametrize(
    "content, code",
    [
        (b"\x89PNG\r\n\x1a\n not json", "INVALID_JSON"),
        (b'["a list"]', "INVALID_JSON"),
        (b'{"instances": [{"features": [0.5]}]}', "MISSING_INPUT"),
        (b'{"instances": [{"features": [1, 2], "context": [0, 0, 0]}]}', "INVALID_SHAPE"),
        (b'{"images": ["iVBORw0KGgo="]}', "UNKNOWN_INPUT"),
        (b'{"instances": [{"features": [NaN, 0, 0, 0, 0, 0], "context": [0, 0, 0]}]}',
         "NON_FINITE_VALUE"),
        (b'{"predict": 1}' + b" " * 300, "PAYLOAD_TOO_LARGE"),
    ],
)  # fmt: skip
def test_a_generic_models_bad_object_gets_the_apis_code(content, code):
    from batch_job import answer_objects
    from errors import ApiError

    good = json.dumps({"instances": [{"features": [0] * 6, "context": [0] * 3}]}).encode()
    answers = answer_objects(
        generic("pair-int8.tflite"), [("bad", content), ("good", good)], budget(), 256, 300
    )
    assert isinstance(answers[0], ApiError) and answers[0].code == code, answers[0]
    assert "predictions" in answers[1]


def test_records_are_json_lines_of_the_key_the_model_and_the_answer_or_error():
    from batch_job import ObjectError, jsonl, record
    from errors import ApiError

    ref = {"name": "mnist", "version": 7}
    lines = jsonl(
        [
            record("a.png", ref, {"label": "3", "class_id": 3, "confidence": 0.9, "top": []}),
            record("b.png", ref, ApiError("INVALID_IMAGE", "b.png could not be decoded")),
            record("c.png", ref, ObjectError("OBJECT_NOT_FOUND", "deleted")),
        ]
    )
    assert lines.count(b"\n") == 3 and lines.endswith(b"\n")
    first, second, third = (json.loads(line) for line in lines.splitlines())
    assert first == {
        "key": "a.png",
        "model": ref,
        "label": "3",
        "class_id": 3,
        "confidence": 0.9,
        "top": [],
    }
    assert second["error"] == {"code": "INVALID_IMAGE", "message": "b.png could not be decoded"}
    assert third["error"]["code"] == "OBJECT_NOT_FOUND"


def test_batch_size_cannot_exceed_what_the_function_takes():
    """template.yaml's BatchSize MaxValue is batch_job's MAX_BATCH_ITEMS."""
    from batch_job import MAX_BATCH_ITEMS
    from local.transformed import load_template

    assert load_template()["Parameters"]["BatchSize"]["MaxValue"] == MAX_BATCH_ITEMS


# -- the handler over an in-memory S3 ----------------------------------------------------------


@pytest.fixture
def handler(serve, fake_s3, monkeypatch, manifest):
    """batch.handle with the fixture model served from fake_s3, which also holds the inputs."""
    import batch

    serve(fake_s3)
    monkeypatch.setattr(batch, "get_batch_settings", lambda: settings())
    monkeypatch.setattr(batch, "get_client", lambda: fake_s3)
    batch._pinned.clear()
    yield batch
    batch._pinned.clear()


def scored(handler, fake_s3, keys):
    event = batch_event(keys)
    event["BatchInput"]["model"]["version"] = fixture_version()
    for item in event["Items"]:
        item["Size"] = len(fake_s3.objects.get(item["Key"], b""))
    return handler.handle(event, None)


def fixture_version() -> int:
    return json.loads((FIXTURE_DIR / "manifest.json").read_text())["version"]


def test_a_failing_s3_fails_the_batch_and_writes_nothing(handler, fake_s3):
    fake_s3.objects["input/a.png"] = digit_png(0)
    handler.handle(job_event(), None)  # the model loads
    fake_s3.fail = ConnectionError("S3 unreachable")
    with pytest.raises(ConnectionError):
        scored(handler, fake_s3, ["input/a.png"])
    assert not any(k.startswith("results/") for k in fake_s3.objects)


def test_an_object_s3_refuses_to_read_is_a_record_the_others_are_answered(handler, fake_s3):
    class PermissionDeniedError(Exception):  # obstore's, by name
        pass

    fake_s3.objects["input/a.png"] = digit_png(0)
    fake_s3.objects["input/b.png"] = digit_png(1)
    read = fake_s3.get_object

    def get_object(Bucket, Key):  # noqa: N803
        if Key == "input/b.png":
            raise PermissionDeniedError("AccessDenied")
        return read(Bucket=Bucket, Key=Key)

    fake_s3.get_object = get_object
    summary = scored(handler, fake_s3, ["input/a.png", "input/b.png"])
    assert summary["errors"] == {"ACCESS_DENIED": 1} and summary["answered"] == 1
    lines = fake_s3.objects[summary["records"].removeprefix("s3://out/")].decode().splitlines()
    assert json.loads(lines[1])["error"]["code"] == "ACCESS_DENIED"


def test_a_batch_past_its_deadline_writes_nothing(handler, fake_s3):
    from batch_job import DeadlineExceeded
    from local.bootstrap import LambdaContext

    fake_s3.objects["input/a.png"] = digit_png(0)
    handler.handle(job_event(), None)
    expired = LambdaContext(function_name="BatchFunction", deadline_ms=1)  # 1970
    with pytest.raises(DeadlineExceeded, match="after 0 of 1 objects"):
        scored_event = batch_event(["input/a.png"])
        scored_event["BatchInput"]["model"]["version"] = fixture_version()
        handler.handle(scored_event, expired)
    assert not any(k.startswith("results/") for k in fake_s3.objects)


def test_without_a_pointer_a_job_fails_saying_nothing_is_published(handler, fake_s3):
    from errors import ModelUnavailable

    del fake_s3.objects["models/mnist/latest.json"]
    with pytest.raises(ModelUnavailable, match="nothing is published as 'mnist'"):
        handler.handle(job_event(), None)
