"""The batch function against a real S3-protocol server on loopback (moto_server): the state
machine's two events through batch.handle, the objects read and the records written over the
function's own S3 client (obstore), the model loaded by the API's store from the registry.

A few keys of each kind a folder of uploads holds: digits (one of another size than the
model's), a truncated PNG, a text file, an image over the pixel budget, an object over the byte
limit, and one deleted after the job listed it. Each key gets exactly one record; a digit is
answered as POST /predict answers the same image; the others carry their error codes."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.function_support import (
    FIXTURE_DIR,
    GENERIC_DIR,
    function_configured,
    invoke,
    metric_values,
)

pytestmark = pytest.mark.integration


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def digit_png(index: int, size: tuple[int, int] | None = None) -> bytes:
    """A fixture digit as black ink on white, at its own 28x28 or resized."""
    digit = np.load(FIXTURE_DIR / "digits.npz")["x"][index]
    image = Image.fromarray(255 - np.asarray(digit, np.uint8))
    if size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def batch_env(s3, published_model, monkeypatch, tmp_path):
    """The batch function configured as the template configures it: the registry holding the
    fixture model, jobs reading s3://IN/input/ and writing s3://OUT/results/."""
    yield from configured(s3, published_model, monkeypatch, tmp_path)


@pytest.fixture
def generic_env(s3, s3_env, monkeypatch, tmp_path):
    """The same, serving a model that is not an image classifier (two named inputs, two
    outputs), published by the training job's CLI (make publish MODEL=...tflite)."""
    from training.cli import main

    registry = ["--bucket", s3_env, "--prefix", "models", "--artifacts", str(tmp_path / "a")]
    model = ["--model", str(GENERIC_DIR / "pair-float32.tflite"), "--name", "pair"]
    assert main(["publish", *model, "--version", "1796500000", *registry]) == 0
    published = {"bucket": s3_env, "name": "pair", "version": 1796500000}
    yield from configured(s3, published, monkeypatch, tmp_path, ModelName="pair")


def configured(s3, published_model, monkeypatch, tmp_path, **overrides):
    """function_configured with the batch buckets (it resets Powertools' state too)."""
    import batch

    names = {
        "input": f"{published_model['bucket']}-in",
        "output": f"{published_model['bucket']}-out",
    }
    for bucket in names.values():
        s3.create_bucket(Bucket=bucket)
    parameters = {
        "BucketName": published_model["bucket"],
        "BatchInputBucketName": names["input"],
        "BatchOutputBucketName": names["output"],
        "MaxImagePixels": str(512 * 512),
        "BatchMaxObjectBytes": str(200_000),
        **overrides,
    }
    with function_configured(monkeypatch, tmp_path / "cache", **parameters):
        batch.get_batch_settings.cache_clear()
        batch.get_client.cache_clear()
        batch._pinned.clear()
        yield {**names, "s3": s3, "model": published_model}
        batch.get_batch_settings.cache_clear()
        batch.get_client.cache_clear()
        batch._pinned.clear()


def upload(env, objects: dict[str, bytes]) -> list[dict]:
    """The objects under input/, and the items the ItemReader would list for them."""
    s3 = env["s3"]
    for key, data in objects.items():
        s3.put_object(Bucket=env["input"], Key=key, Body=data)
    listed = s3.list_objects_v2(Bucket=env["input"], Prefix="input/")["Contents"]
    return [
        {"Key": o["Key"], "Size": o["Size"], "Etag": o["ETag"], "StorageClass": "STANDARD"}
        for o in listed
    ]


def job_event(execution="job-1", **job) -> dict:
    job = {"input_prefix": "input/", "output_prefix": "results/", **job}
    return {"action": "load_model", "execution": execution, "job": job}


def records(env, key: str) -> list[dict]:
    body = env["s3"].get_object(Bucket=env["output"], Key=key)["Body"].read()
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.decode().splitlines()]


def test_a_batch_of_good_and_bad_keys_gets_one_record_each(batch_env, load_event, capsys):
    import batch

    big = np.tile(np.arange(600, dtype=np.uint8), (600, 1))  # 360,000 px, a small PNG
    objects = {
        "input/a/0.png": digit_png(0),
        "input/a/1.png": digit_png(1),
        "input/a/2-large.png": digit_png(2, (300, 200)),  # another size: prepared as /predict
        "input/b/truncated.png": digit_png(3)[:60],
        "input/b/notes.txt": b"not an image, a shopping list",
        "input/b/too-many-pixels.png": png(big),  # over MaxImagePixels (262,144)
        "input/b/too-many-bytes.png": bytes(250_000),  # over BatchMaxObjectBytes
        "input/b/deleted.png": digit_png(4),
    }
    items = upload(batch_env, objects)
    batch_env["s3"].delete_object(Bucket=batch_env["input"], Key="input/b/deleted.png")

    job = batch.handle(job_event(), None)
    version = batch_env["model"]["version"]
    assert job == {
        "model": {"name": "mnist", "version": version},
        "input_prefix": "input/",
        "results_prefix": "results/job-1/",
        "map_run_prefix": "results/job-1/map-run",
    }
    event = {
        "Items": items,
        "BatchInput": {"model": job["model"], "results_prefix": "results/job-1/"},
    }
    summary = batch.handle(event, None)

    key = summary["records"].removeprefix(f"s3://{batch_env['output']}/")
    assert key.startswith("results/job-1/records/part-") and key.endswith(".jsonl")
    written = records(batch_env, key)
    assert [r["key"] for r in written] == [i["Key"] for i in items]  # one each, in order
    by_key = {r["key"]: r for r in written}
    assert all(r["model"] == {"name": "mnist", "version": version} for r in written)
    errors = {k: r["error"]["code"] for k, r in by_key.items() if "error" in r}
    assert errors == {
        "input/b/truncated.png": "INVALID_IMAGE",
        "input/b/notes.txt": "INVALID_IMAGE",
        "input/b/too-many-pixels.png": "INVALID_IMAGE",
        "input/b/too-many-bytes.png": "OBJECT_TOO_LARGE",
        "input/b/deleted.png": "OBJECT_NOT_FOUND",
    }
    assert "600x600 pixels" in by_key["input/b/too-many-pixels.png"]["error"]["message"]
    assert "BatchMaxObjectBytes" in by_key["input/b/too-many-bytes.png"]["error"]["message"]
    assert summary == {
        "records": summary["records"],
        "objects": 8,
        "answered": 3,
        "errors": {"INVALID_IMAGE": 3, "OBJECT_NOT_FOUND": 1, "OBJECT_TOO_LARGE": 1},
    }

    # each digit answered as POST /predict answers the same image
    predict = load_event("predict-image.json")
    for name in ("input/a/0.png", "input/a/1.png", "input/a/2-large.png"):
        body = json.dumps({"images": [base64.b64encode(objects[name]).decode()]})
        api = invoke({**predict, "body": body, "isBase64Encoded": False}).body["predictions"][0]
        record = by_key[name]
        assert set(record) == {"key", "model", "label", "class_id", "confidence", "top"}
        assert record["label"] == api["label"] and record["top"] == api["top"]
        assert record["confidence"] == pytest.approx(api["confidence"], abs=1e-6)
    expected = np.load(FIXTURE_DIR / "digits.npz")["expected"]
    assert [by_key[f"input/a/{i}.png"]["class_id"] for i in (0, 1)] == expected[:2].tolist()

    out = capsys.readouterr().out
    assert metric_values(out, "BatchObjects") == [8.0]
    assert metric_values(out, "BatchAnswers") == [3.0]
    assert metric_values(out, "ObjectErrors", code="INVALID_IMAGE") == [3.0]


def test_a_retried_batch_writes_the_same_file_again(batch_env):
    import batch

    items = upload(batch_env, {"input/0.png": digit_png(0), "input/1.png": digit_png(1)})
    job = batch.handle(job_event("job-2"), None)
    event = {
        "Items": items,
        "BatchInput": {"model": job["model"], "results_prefix": "results/job-2/"},
    }
    first, second = batch.handle(event, None), batch.handle(event, None)
    assert first == second
    listed = batch_env["s3"].list_objects_v2(Bucket=batch_env["output"], Prefix="results/job-2/")
    assert [o["Key"] for o in listed["Contents"]] == [first["records"].split("/", 3)[3]]


def test_a_job_keeps_the_version_it_started_with(batch_env, tmp_path):
    """A newer version published mid-job does not answer the job's later batches."""
    import batch
    from tests.integration.test_function_s3 import publish_copy

    items = upload(batch_env, {"input/0.png": digit_png(0)})
    job = batch.handle(job_event("job-3"), None)
    old = job["model"]["version"]
    publish_copy(tmp_path, batch_env["model"]["bucket"], old + 60)
    assert batch.handle(job_event("job-4"), None)["model"]["version"] == old + 60
    event = {
        "Items": items,
        "BatchInput": {"model": job["model"], "results_prefix": "results/job-3/"},
    }
    summary = batch.handle(event, None)
    key = summary["records"].split("/", 3)[3]
    assert records(batch_env, key)[0]["model"]["version"] == old


def test_a_version_that_cannot_load_fails_the_job_with_the_reason(batch_env):
    import batch
    from errors import ModelUnavailable

    with pytest.raises(ModelUnavailable) as failure:
        batch.handle(job_event(version=1234), None)
    assert "models/mnist/1234/manifest.json does not exist" in str(failure.value)


def test_a_job_outside_the_stacks_prefixes_or_of_no_version_is_refused(batch_env):
    import batch
    from batch_job import InvalidJob

    with pytest.raises(InvalidJob, match="outside the prefix this stack may use"):
        batch.handle(job_event(input_prefix="elsewhere/"), None)
    with pytest.raises(InvalidJob, match="'latest' or a published version"):
        batch.handle(job_event(version="newest"), None)


def test_a_generic_models_objects_are_predict_bodies_answered_as_predict_answers(
    generic_env, load_event
):
    """Any other TFLite model: each object a JSON body of /predict, its record /predict's
    answer to the same body; a body that does not fit the model, or is not JSON, its code."""
    import batch

    good = {"instances": [{"features": [0.5, -1, 0, 1, 0.2, 0.1], "context": [0.1, 0.2, 0.3]}]}
    objects = {
        "input/0.json": json.dumps(good).encode(),
        "input/1.json": json.dumps({"instances": [{"features": [1, 2]}]}).encode(),
        "input/2.png": digit_png(0),
    }
    items = upload(generic_env, objects)
    job = batch.handle(job_event("job-g"), None)
    assert job["model"] == {"name": "pair", "version": 1796500000}
    event = {"Items": items, "BatchInput": {"model": job["model"], "results_prefix": "results/g/"}}
    summary = batch.handle(event, None)
    by_key = {r["key"]: r for r in records(generic_env, summary["records"].split("/", 3)[3])}

    predict = load_event("predict-instances.json")
    api = invoke({**predict, "body": json.dumps(good), "isBase64Encoded": False}).body
    assert by_key["input/0.json"]["predictions"] == api["predictions"]
    assert set(api["predictions"][0]["outputs"]) == {"classes", "score"}
    assert by_key["input/1.json"]["error"]["code"] == "MISSING_INPUT"
    assert by_key["input/2.png"]["error"]["code"] == "INVALID_JSON"
    assert summary["answered"] == 1
