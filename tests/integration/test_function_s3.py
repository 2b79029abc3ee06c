"""The inference function against a real S3-protocol server on loopback (moto_server): cold start
through the real model store and boto3, every event, every fixture digit, a tampered model, and a
new version published behind latest.json while the function runs."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from tests.function_support import (
    FIXTURE_DIR,
    assert_right,
    expected_events,
    function_configured,
    invoke,
    log_records,
    metric_values,
    new_version,
    reference_probabilities,
    reset_powertools,
    with_body,
)

pytestmark = [
    pytest.mark.integration,
]


@pytest.fixture(autouse=True)
def fresh_powertools(monkeypatch):
    reset_powertools(monkeypatch)


@pytest.fixture
def function_env(s3_env, monkeypatch, tmp_path):
    """The function configured as the template configures it, against the loopback S3.

    The real app.get_store builds the store (boto3 over HTTP); it is forgotten after the test.
    """
    with function_configured(monkeypatch, tmp_path / "cache", BucketName=s3_env):
        yield s3_env


def publish_copy(tmp_path, bucket: str, version: int) -> None:
    """The fixture model published again as `version` by the training job's own publisher."""
    from training.publish import publish

    artifact = tmp_path / "artifacts" / "mnist" / str(version)
    artifact.mkdir(parents=True)
    shutil.copy(FIXTURE_DIR / "model.tflite", artifact / "model.tflite")
    manifest = new_version(json.loads((FIXTURE_DIR / "manifest.json").read_text()), version)
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    publish(artifact, bucket, "models")


def test_cold_start_from_s3_then_every_event(published_model, function_env, load_event, capsys):
    for name, expected in expected_events().items():
        result = invoke(load_event(name))
        assert result.status == expected["status"], (name, result.body)
        assert result.code == expected.get("code"), name
    out = capsys.readouterr().out
    assert metric_values(out, "ColdStart") == [1.0]
    assert len(metric_values(out, "ModelLoadTime")) == 1  # loaded once for all requests
    loaded = next(r for r in log_records(out) if r.get("message") == "model loaded")
    assert loaded["model_version"] == published_model["version"]


def test_every_fixture_digit_matches_the_recorded_prediction(
    published_model, function_env, load_event
):
    digits = np.load(FIXTURE_DIR / "digits.npz")
    event = load_event("predict-instances.json")
    labels: list[int] = []
    for start in range(0, len(digits["x"]), 250):
        batch = digits["x"][start : start + 250].astype(int).tolist()
        result = invoke(with_body(event, json.dumps({"instances": batch})))
        assert result.status == 200
        labels += [p["class_id"] for p in result.body["predictions"]]
    np.testing.assert_array_equal(labels, digits["expected"])
    accuracy = float(np.mean(np.array(labels) == digits["y"]))
    evaluation = published_model["manifest"]["evaluation"]
    assert accuracy == pytest.approx(evaluation["quantized"]["accuracy"], abs=0.01)


def test_a_model_whose_bytes_do_not_match_its_manifest_is_refused(
    s3, function_env, load_event, capsys
):
    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    model = bytearray((FIXTURE_DIR / "model.tflite").read_bytes())
    model[1000] ^= 0x01  # one bit flipped after the manifest was written
    base = f"models/mnist/{manifest['version']}"
    s3.put_object(Bucket=function_env, Key=f"{base}/model.tflite", Body=bytes(model))
    s3.put_object(
        Bucket=function_env, Key=f"{base}/manifest.json", Body=json.dumps(manifest).encode()
    )
    s3.put_object(
        Bucket=function_env,
        Key="models/mnist/latest.json",
        Body=json.dumps(
            {
                "name": "mnist",
                "version": manifest["version"],
                "manifest_key": f"{base}/manifest.json",
            }
        ).encode(),
    )

    for _ in range(2):
        result = invoke(load_event("predict-instances.json"))
        assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE")
        assert "did not verify" in result.body["error"]  # tried again later: it may heal
    out = capsys.readouterr().out
    assert metric_values(out, "ModelLoadFailures", role="stable") == [
        1.0
    ]  # refused once, remembered after
    assert metric_values(out, "ServerErrors", code="MODEL_UNAVAILABLE") == [1.0, 1.0]


def test_a_newer_version_is_served_after_the_refresh_interval(
    published_model, function_env, load_event, monkeypatch, tmp_path
):
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "2")
    health = load_event("health-deep.json")  # the deep one: it loads and refreshes
    old = published_model["version"]
    before_load = time.monotonic()
    assert invoke(health).body["model"]["version"] == old  # latest.json read during this call
    after_load = time.monotonic()

    publish_copy(tmp_path, function_env, old + 60)
    served_soon_after = invoke(health).body["model"]["version"]
    if time.monotonic() - before_load < 2:  # else a slow machine is already past the interval
        assert served_soon_after == old
    time.sleep(max(0.0, after_load + 2.1 - time.monotonic()))
    assert invoke(health).body["model"]["version"] == old  # starts the refresh, not held up
    import app

    assert app.get_store().wait(30)
    assert invoke(health).body["model"]["version"] == old + 60
    prediction = invoke(load_event("predict-instances.json")).body
    assert (
        prediction["model"]["version"] == old + 60 and prediction["predictions"][0]["label"] == "7"
    )


def test_the_function_reads_the_object_versions_the_pointer_recorded(
    s3_env, s3, tmp_path, monkeypatch, load_event
):
    """Issue 27: on a versioned bucket the pointer records each file's S3 object version id
    and the function reads exactly those, so a key written again (a model and a manifest that
    agree with each other) cannot serve other bytes."""
    import base64

    s3.put_bucket_versioning(Bucket=s3_env, VersioningConfiguration={"Status": "Enabled"})
    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    version = manifest["version"]
    publish_copy(tmp_path, s3_env, version)
    pointer = json.loads(
        s3.get_object(Bucket=s3_env, Key="models/mnist/latest.json")["Body"].read()
    )
    recorded = pointer["object_versions"]
    assert set(recorded) == {"manifest.json", "model.tflite"} and "null" not in recorded.values()
    other = FIXTURE_DIR.parent / "mnist-schema1"  # another model, with a manifest that fits it
    replaced = new_version(json.loads((other / "manifest.json").read_text()), version)
    base = f"models/mnist/{version}"
    s3.put_object(
        Bucket=s3_env, Key=f"{base}/model.tflite", Body=(other / "model.tflite").read_bytes()
    )
    s3.put_object(Bucket=s3_env, Key=f"{base}/manifest.json", Body=json.dumps(replaced).encode())
    event = load_event("predict-instances.json")
    expected = reference_probabilities(FIXTURE_DIR, json.loads(base64.b64decode(event["body"])))
    with function_configured(monkeypatch, tmp_path / "cache", BucketName=s3_env):
        result = invoke(event)
    assert result.status == 200, result.body
    assert_right(result.body, expected)  # the published bytes, not the replaced ones
