"""Opt-in capture on a real S3 (moto on loopback), and the way back to training: the function
with CaptureSampleRate=1 writes each request's inputs (PNG) and answers (JSON) to the capture
bucket; a person sorts the images into class folders under captures-labelled/; the training
job reads that folder from S3 (`make train DATASET=s3://BUCKET/captures-labelled/mnist/`) and
trains on exactly the pixels the model was asked about."""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest

import capture
from tests.function_support import (
    FIXTURE_DIR,
    function_configured,
    invoke,
    metric_values,
    reset_powertools,
    with_body,
)

pytestmark = [
    pytest.mark.integration,
]

REQUESTS, PER_REQUEST = 12, 8  # 96 digits: every class in train, validation and test splits


@pytest.fixture(autouse=True)
def fresh_powertools(monkeypatch):
    reset_powertools(monkeypatch)


@pytest.fixture
def capture_bucket(s3):
    bucket = f"captures-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def capturing(published_model, capture_bucket, monkeypatch, tmp_path):
    """The function as the template configures it with CaptureSampleRate=1; the stack's capture
    bucket is this test's (locally !Ref CaptureBucket would be its logical id)."""
    overrides = {"BucketName": published_model["bucket"], "CaptureSampleRate": "1"}
    with function_configured(monkeypatch, tmp_path / "cache", **overrides):
        monkeypatch.setenv("CAPTURE_BUCKET", capture_bucket)
        # This test is about the round trip, not capture's 1 s write budget (the unit tests
        # hold that): on a loaded 2-core machine a moto PUT can take longer, and a capture
        # that gives up (as it should) would leave the test one image short.
        monkeypatch.setattr(capture, "CLIENT_READ_TIMEOUT", 10)
        yield capture_bucket


def digits():
    with np.load(FIXTURE_DIR / "digits.npz") as data:
        return data["x"], data["y"]


def test_captures_round_trip_into_training(capturing, s3, load_event, capsys, tmp_path):
    x, y = digits()
    request = load_event("predict-instances.json")
    request_id = request["requestContext"]["requestId"]
    sent: dict[str, int] = {}  # captured image name -> index in the digits
    for r in range(REQUESTS):
        event = json.loads(json.dumps(request))
        event["requestContext"]["requestId"] = f"{request_id}-{r}"
        batch = list(range(r * PER_REQUEST, (r + 1) * PER_REQUEST))
        body = json.dumps({"instances": x[batch].astype(int).tolist()})
        assert invoke(with_body(event, body)).status == 200
        sent.update({f"{request_id}-{r}-{i}.png": index for i, index in enumerate(batch)})
    assert metric_values(capsys.readouterr().out, "CaptureWrites") == [PER_REQUEST + 1] * REQUESTS

    # what is stored, where, and how
    day = time.strftime("%Y-%m-%d", time.gmtime())
    folder = f"captures/mnist/{published_model_version()}/date={day}/"
    listed = s3.list_objects_v2(Bucket=capturing, Prefix="captures/")["Contents"]
    keys = {item["Key"] for item in listed}
    assert keys == {folder + name for name in sent} | {
        f"{folder}{request_id}-{r}.json" for r in range(REQUESTS)
    }
    head = s3.head_object(Bucket=capturing, Key=folder + next(iter(sent)))
    assert head["ServerSideEncryption"] == "AES256" and head["ContentType"] == "image/png"
    answers = json.loads(
        s3.get_object(Bucket=capturing, Key=f"{folder}{request_id}-0.json")["Body"].read()
    )
    assert len(answers["answers"]) == PER_REQUEST and answers["answers"][0]["label"]

    # a person labels them: each image into the folder of its true class
    for name, index in sent.items():
        s3.copy_object(
            Bucket=capturing,
            CopySource={"Bucket": capturing, "Key": folder + name},
            Key=f"captures-labelled/mnist/{y[index]}/{name}",
        )

    # `make train DATASET=s3://...` reads exactly the pixels the model was asked about
    from training.data import load_dataset

    uri = f"s3://{capturing}/captures-labelled/mnist/"
    dataset = load_dataset(uri)
    assert dataset.class_names == [str(c) for c in sorted(set(y[list(sent.values())]))]
    order = sorted(sent, key=lambda name: (str(y[sent[name]]), name))  # folder, then file
    expected = x[[sent[name] for name in order]]
    assert np.array_equal(dataset.x[..., 0], expected)
    assert [dataset.class_names[i] for i in dataset.y] == [str(y[sent[n]]) for n in order]

    from training.cli import main

    artifacts = tmp_path / "artifacts"
    # 96 digits and one epoch: the data path is the point, not the model, which its gate may
    # well refuse; FORCE keeps it either way
    code = main(
        ["train", "--name", "mnist", "--dataset", uri, "--epochs", "1", "--force",
         "--artifacts", str(artifacts), "--version", "5"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().out[-2000:]
    manifest = json.loads((artifacts / "mnist" / "5" / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == uri
    assert sum(manifest["dataset"]["sizes"].values()) == REQUESTS * PER_REQUEST


def published_model_version() -> int:
    return json.loads((FIXTURE_DIR / "manifest.json").read_text())["version"]
