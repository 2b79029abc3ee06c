"""make batch locally, end to end: a few hundred images under an S3 prefix on the loopback S3,
the batch jobs' own state machine definition run by aws-local-stepfunctions (Node 22), its
tasks invoking the batch function in local execution environments (local.batch, as make batch
runs it). Every key gets exactly one record; the digits are answered as the fixture model
answers them; the bad objects carry their codes; the map run's summary (ResultWriter's
manifest) accounts for every batch. Slow: it starts Node and two function environments."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import EVENTS_DIR, FIXTURE_DIR
from tests.local_support import no_leftovers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIGITS = 300
BATCH_SIZE = 64  # several batches, the last one short


def digit_png(index: int) -> bytes:
    """A fixture digit as black ink on white, as people send them."""
    digit = np.load(FIXTURE_DIR / "digits.npz")["x"][index]
    buffer = io.BytesIO()
    Image.fromarray(255 - np.asarray(digit, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def buckets(s3, published_model):
    names = {
        "input": f"{published_model['bucket']}-in",
        "output": f"{published_model['bucket']}-out",
    }
    for bucket in names.values():
        s3.create_bucket(Bucket=bucket)
    return names


def make_batch(published_model, buckets, *extra: str) -> int:
    from local import batch

    with no_leftovers():
        return batch.main(
            [
                f"--input=s3://{buckets['input']}/photos/",
                f"--output=s3://{buckets['output']}/results/",
                "--where=local",
                "--environments=2",
                *extra,
                "--parameter-overrides",
                f"BucketName={published_model['bucket']}",
                f"ModelPrefix={published_model['prefix']}",
                f"BatchSize={BATCH_SIZE}",
            ]
        )


def read_json(s3, bucket: str, key: str):
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def api_answers(monkeypatch, tmp_path, published_model, images: list[bytes]) -> list[dict]:
    """POST /predict's answers to the same images, through the real handler, 32 at a time."""
    from tests.function_support import function_configured, invoke

    with open(EVENTS_DIR / "predict-image.json") as f:
        predict = json.load(f)
    answers = []
    with function_configured(monkeypatch, tmp_path / "cache", BucketName=published_model["bucket"]):
        for start in range(0, len(images), 32):
            encoded = [base64.b64encode(i).decode() for i in images[start : start + 32]]
            body = json.dumps({"images": encoded})
            result = invoke({**predict, "body": body, "isBase64Encoded": False})
            assert result.status == 200, result.body
            answers += result.body["predictions"]
    return answers


def test_a_few_hundred_images_through_the_local_state_machine(
    s3, published_model, buckets, capsys, monkeypatch, tmp_path
):
    objects = {f"photos/digits/{i:04d}.png": digit_png(i) for i in range(DIGITS)}
    bad = {
        "photos/other/truncated.png": digit_png(0)[:50],
        "photos/other/readme.txt": b"these are scans of forms",
        "photos/other/empty.png": b"",
        "photos/other/blank.png": _blank_png(),
    }
    for key, data in {**objects, **bad}.items():
        s3.put_object(Bucket=buckets["input"], Key=key, Body=data)
    s3.put_object(Bucket=buckets["input"], Key="elsewhere/0.png", Body=digit_png(0))

    assert make_batch(published_model, buckets) == 0
    out = capsys.readouterr().out
    total = DIGITS + len(bad)
    batches = -(-total // BATCH_SIZE)
    assert f"listed {total} objects" in out and f"{batches} batches" in out
    assert f"batches {batches} of {batches} done: items {total} of {total}" in out

    listed = s3.list_objects_v2(Bucket=buckets["output"], Prefix="results/")["Contents"]
    keys = [o["Key"] for o in listed]
    (folder,) = {k.split("/")[1] for k in keys}  # one job: results/<execution name>/
    parts = [k for k in keys if k.startswith(f"results/{folder}/records/part-")]
    assert len(parts) == batches
    records = []
    for key in parts:
        body = s3.get_object(Bucket=buckets["output"], Key=key)["Body"].read()
        records += [json.loads(line) for line in body.decode().splitlines()]
    record_keys = [r["key"] for r in records]
    assert sorted(record_keys) == sorted([*objects, *bad])  # every key exactly once
    by_key = {r["key"]: r for r in records}
    version = published_model["version"]
    assert all(r["model"] == {"name": "mnist", "version": version} for r in records)
    # the digits answered as POST /predict answers the same images
    api = api_answers(monkeypatch, tmp_path, published_model, list(objects.values()))
    for key, answer in zip(objects, api, strict=True):
        assert by_key[key]["label"] == answer["label"] and by_key[key]["top"] == answer["top"]
        assert by_key[key]["confidence"] == pytest.approx(answer["confidence"], abs=1e-6)
    assert {k: by_key[k]["error"]["code"] for k in bad} == dict.fromkeys(bad, "INVALID_IMAGE")
    assert "photos/other/blank.png: " in by_key["photos/other/blank.png"]["error"]["message"]

    # the map run's summary, as ResultWriter writes it: every batch a succeeded child
    (manifest_key,) = [k for k in keys if k.endswith("/manifest.json")]
    assert manifest_key.startswith(f"results/{folder}/map-run/")
    manifest = read_json(s3, buckets["output"], manifest_key)
    assert manifest["ResultFiles"]["FAILED"] == []
    children = [
        child
        for file in manifest["ResultFiles"]["SUCCEEDED"]
        for child in read_json(s3, buckets["output"], file["Key"])
    ]
    assert len(children) == batches and {c["Status"] for c in children} == {"SUCCEEDED"}
    assert sum(json.loads(c["Output"])["objects"] for c in children) == total
    assert f"{total} objects: {DIGITS} answered, {len(bad)} without an answer" in out
    assert f"s3://{buckets['output']}/results/{folder}/records/" in out


def _blank_png() -> bytes:
    """A white page: a PNG that decodes, with no digit drawn on it."""
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_version_that_cannot_load_fails_the_job_saying_why(s3, published_model, buckets, capsys):
    s3.put_object(Bucket=buckets["input"], Key="photos/0.png", Body=digit_png(0))
    assert make_batch(published_model, buckets, "--version=12345") == 1
    err = capsys.readouterr().err
    assert "the job failed" in err and "12345" in err
    listed = s3.list_objects_v2(Bucket=buckets["output"], Prefix="results/")
    assert listed.get("KeyCount", 0) == 0  # nothing written
