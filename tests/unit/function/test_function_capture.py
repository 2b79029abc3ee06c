"""Opt-in capture (capture.py, wired in app.py): what is kept, where, and that neither an
unsampled request nor a failed write is affected by it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import app
from capture import MAX_INPUTS, Capture, CaptureFailed
from mlcore.deadline import Deadline
from tests.function_support import (
    FIXTURE_DIR,
    fixture_manifest,
    invoke,
    log_records,
    metric_values,
    with_body,
)

V1 = fixture_manifest()["version"]
NOW = 1764300000.0  # 2025-11-28


class FakeS3Writer:
    def __init__(self, fail: Exception | None = None):
        self.objects: dict[str, dict] = {}
        self.fail = fail

    def put_object(self, **kwargs):
        if self.fail:
            raise self.fail
        self.objects[kwargs["Key"]] = kwargs


def never_drawn() -> float:
    raise AssertionError("a request was drawn while capture is off")


def digits(n: int) -> np.ndarray:
    with np.load(FIXTURE_DIR / "digits.npz") as data:
        return data["x"][:n]


@pytest.fixture
def capturing(serve, fake_s3, monkeypatch):
    """The handler with capture at `rate` into a fake bucket; returns the fake."""

    def install(rate: float, writer: FakeS3Writer | None = None) -> FakeS3Writer:
        serve(fake_s3)
        writer = writer or FakeS3Writer()
        capture = Capture("captures-bucket", "captures", rate, lambda: writer, now=lambda: NOW)
        monkeypatch.setattr(app, "get_capture", lambda: capture)
        return writer

    return install


def predict(load_event, x):
    body = json.dumps({"instances": x.astype(int).tolist()})
    return invoke(with_body(load_event("predict-instances.json"), body))


def test_off_by_default_nothing_is_drawn_or_written(serve, fake_s3, load_event, monkeypatch):
    serve(fake_s3)
    capture = app.get_capture()  # the template's settings: CaptureSampleRate 0
    assert capture.rate == 0 and capture.prefix == "captures"
    monkeypatch.setattr(capture, "_draw", never_drawn)
    monkeypatch.setattr(capture, "_client_factory", never_drawn)
    assert predict(load_event, digits(2)).status == 200


def test_a_sampled_request_keeps_its_inputs_as_png_and_its_answers_as_json(
    capturing, load_event, capsys
):
    writer = capturing(1.0)
    x = digits(3)
    result = predict(load_event, x)
    assert result.status == 200
    request_id = load_event("predict-instances.json")["requestContext"]["requestId"]
    folder = f"captures/mnist/{V1}/date=2025-11-28/"
    assert sorted(writer.objects) == sorted(
        [f"{folder}{request_id}-{i}.png" for i in range(3)] + [f"{folder}{request_id}.json"]
    )
    for i in range(3):
        put = writer.objects[f"{folder}{request_id}-{i}.png"]
        assert put["ContentType"] == "image/png" and put["ServerSideEncryption"] == "AES256"
        image = Image.open(io.BytesIO(put["Body"]))
        assert image.mode == "L" and np.array_equal(np.asarray(image), x[i])  # as the model saw it
    document = json.loads(writer.objects[f"{folder}{request_id}.json"]["Body"])
    assert document["model"] == {"name": "mnist", "version": V1}
    assert document["answers"] == result.body["predictions"]
    assert document["images"] == [f"{request_id}-{i}.png" for i in range(3)]
    out = capsys.readouterr().out
    assert metric_values(out, "CaptureWrites") == [4]


def test_a_big_batch_keeps_its_first_inputs_only(capturing, load_event):
    writer = capturing(1.0)
    assert predict(load_event, np.resize(digits(20), (20, 28, 28))).status == 200
    assert sum(key.endswith(".png") for key in writer.objects) == MAX_INPUTS
    (document,) = [json.loads(o["Body"]) for k, o in writer.objects.items() if k.endswith(".json")]
    assert document["inputs"] == 20 and len(document["answers"]) == MAX_INPUTS


def test_a_failed_write_never_fails_the_request_and_is_counted(capturing, load_event, capsys):
    capturing(1.0, FakeS3Writer(fail=ConnectionError("S3 is unreachable")))
    result = predict(load_event, digits(1))
    assert result.status == 200 and result.body["predictions"][0]["label"]
    out = capsys.readouterr().out
    assert metric_values(out, "CaptureFailures") == [1]
    warning = next(r for r in log_records(out) if r.get("message") == "capture failed")
    assert "S3 is unreachable" in warning["reason"]


def test_sampling_draws_once_per_request_at_the_rate():
    draws = iter([0.05, 0.5, 0.09999])
    capture = Capture("b", "captures", 0.1, lambda: None, draw=lambda: next(draws))
    assert [capture.sampled() for _ in range(3)] == [True, False, True]
    assert not Capture("b", "captures", 0.0, lambda: None, draw=never_drawn).sampled()


def test_no_write_starts_when_the_deadline_is_near():
    writer = FakeS3Writer()
    capture = Capture("b", "captures", 1.0, lambda: writer, now=lambda: NOW)
    with pytest.raises(CaptureFailed, match="deadline"):
        capture.write("mnist", 1, "r", digits(1)[..., None], [{}], Deadline(0.5))
    assert writer.objects == {}


def test_rgb_inputs_are_rgb_pngs():
    writer = FakeS3Writer()
    capture = Capture("b", "", 1.0, lambda: writer, now=lambda: NOW)
    rgb = np.random.default_rng(0).integers(0, 256, (1, 8, 8, 3)).astype(np.float32)
    keys = capture.write("photos", 2, "r", rgb, [{"label": "cat"}], Deadline(10))
    assert keys[0] == "photos/2/date=2025-11-28/r-0.png"  # no prefix: from the bucket's root
    image = Image.open(io.BytesIO(writer.objects[keys[0]]["Body"]))
    assert image.mode == "RGB" and np.array_equal(np.asarray(image), rgb[0].astype(np.uint8))
