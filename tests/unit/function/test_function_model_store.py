"""model_store: cold start from the registry, verification, refresh, refusal, 503 with no model.

A fake in-memory S3 and a fake clock; the model is the real fixture model.
"""

from __future__ import annotations

import builtins
import os
import threading

import numpy as np
import pytest

from errors import ModelUnavailable
from tests.function_support import FakeS3, fixture_manifest, new_version

V1 = fixture_manifest()["version"]
V2 = V1 + 3600


def model_key(version: int) -> str:
    return f"models/mnist/{version}/model.tflite"


def test_cold_start_loads_the_version_latest_points_to(fake_s3, make_store, tmp_path):
    store = make_store(fake_s3)
    assert store.current is None
    model = store.get()
    assert (model.name, model.version, model.labels[7]) == ("mnist", V1, "7")
    assert model.path == str(tmp_path / "models" / "mnist" / str(V1) / "model.tflite")
    assert os.path.getsize(model.path) == model.manifest["files"]["model.tflite"]["size"]
    assert not [p for p in os.listdir(os.path.dirname(model.path)) if p.endswith(".part")]
    assert set(model.timings_ms) == {"download", "verify", "build", "total"}


def test_the_model_file_is_written_once_and_never_read_back(fake_s3, make_store, monkeypatch):
    opened: list[tuple[str, str]] = []
    real_open = builtins.open

    def recording_open(file, mode="r", *args, **kwargs):
        opened.append((str(file), mode))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    make_store(fake_s3).get()
    model_opens = [mode for path, mode in opened if "model.tflite" in path]
    assert model_opens == ["wb"]  # hashed while streaming; the interpreter maps the file natively
    assert fake_s3.reads[model_key(V1)] == 1


def test_requests_within_the_refresh_interval_do_no_io(fake_s3, make_store, clock):
    store = make_store(fake_s3, refresh_seconds=300)
    store.get()
    for _ in range(50):
        clock.advance(5)
        store.get()
    assert fake_s3.reads["models/mnist/latest.json"] == 1  # 250 s < 300 s
    clock.advance(60)
    store.get()
    assert fake_s3.reads["models/mnist/latest.json"] == 2


def test_a_newer_version_is_served_after_the_refresh_interval(
    fake_s3, make_store, clock, manifest, model_bytes
):
    store = make_store(fake_s3, refresh_seconds=60)
    first = store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes)
    clock.advance(59)
    assert store.get().version == V1
    clock.advance(1)
    assert store.get().version == V2
    assert not os.path.exists(first.path)  # the old file is removed from /tmp
    assert store.get().predict(np.zeros((1, 28, 28))).shape == (1, 10)


def test_a_version_with_the_wrong_checksum_is_refused_and_the_good_one_keeps_serving(
    fake_s3, make_store, clock, manifest, model_bytes
):
    store = make_store(fake_s3, refresh_seconds=60)
    store.get()
    tampered = bytearray(model_bytes)
    tampered[len(tampered) // 2] ^= 0xFF
    bad = new_version(manifest, V2)  # manifest of the original bytes, tampered bytes uploaded
    fake_s3.publish(bad, bytes(tampered))

    for _ in range(5):
        clock.advance(61)
        assert store.get().version == V1
    assert fake_s3.reads[model_key(V2)] == 1  # remembered, never downloaded again
    assert "sha256" in store.refused[V2]
    refused_file = os.path.join(os.path.dirname(store.get().path), "..", str(V2), "model.tflite")
    assert not os.path.exists(refused_file)  # never left where it could be mistaken for a good one


def test_refusals_are_reported_once(fake_s3, make_store, clock, manifest, model_bytes):
    failures: list[tuple] = []
    store = make_store(fake_s3, refresh_seconds=1)
    store._on_failure = lambda version, reason: failures.append((version, reason))
    store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes + b"extra")
    for _ in range(3):
        clock.advance(2)
        store.get()
    assert [v for v, _ in failures] == [V2]
    assert "bytes" in failures[0][1]


@pytest.mark.parametrize(
    "break_it",
    [
        lambda m, b: (m, b[:-10]),  # truncated
        lambda m, b: (m, b + b"\0" * 10),  # longer than the manifest says
        lambda m, b: ({**m, "name": "fashion"}, b),  # manifest for another model
        lambda m, b: ({**m, "schema_version": 99}, b),
        lambda m, b: ({k: v for k, v in m.items() if k != "files"}, b),
        lambda m, b: (
            new_version({**m, "input": {**m["input"], "dtype": "float32"}}, m["version"], b),
            b,
        ),
        lambda m, b: (
            new_version(m, m["version"], b"\0" * 4096),
            b"\0" * 4096,
        ),  # checksum fine, not a model
    ],
    ids=[
        "truncated",
        "too-long",
        "other-name",
        "schema",
        "no-files",
        "tensor-mismatch",
        "not-a-model",
    ],
)
def test_no_good_version_means_503_and_a_clear_message(manifest, model_bytes, make_store, break_it):
    bad_manifest, bad_bytes = break_it(manifest, model_bytes)
    s3 = FakeS3()
    s3.publish(bad_manifest, bad_bytes)
    store = make_store(s3)
    with pytest.raises(ModelUnavailable) as raised:
        store.get()
    assert raised.value.status == 503 and raised.value.code == "MODEL_UNAVAILABLE"
    assert f"version {V1} was refused" in raised.value.message
    assert store.current is None


def test_an_empty_registry_is_503_and_the_next_request_tries_again(
    make_store, manifest, model_bytes
):
    s3 = FakeS3()
    store = make_store(s3)
    for _ in range(2):
        with pytest.raises(ModelUnavailable, match="could not be loaded"):
            store.get()
    assert s3.reads["models/mnist/latest.json"] == 2
    s3.publish(manifest, model_bytes)
    assert store.get().version == V1


def test_a_refused_first_version_is_replaced_by_a_good_one(make_store, manifest, model_bytes):
    s3 = FakeS3()
    s3.publish(manifest, model_bytes[:-1])
    store = make_store(s3)
    for _ in range(3):
        with pytest.raises(ModelUnavailable, match="refused"):
            store.get()
    assert s3.reads[model_key(V1)] == 1
    s3.publish(new_version(manifest, V2), model_bytes)
    assert store.get().version == V2


def test_s3_down_during_a_refresh_keeps_serving(fake_s3, make_store, clock):
    store = make_store(fake_s3, refresh_seconds=10)
    store.get()
    fake_s3.fail = ConnectionError("endpoint unreachable")
    clock.advance(11)
    assert store.get().version == V1
    clock.advance(1)
    assert store.get().version == V1  # not retried on every request: next try after the interval
    assert fake_s3.reads["models/mnist/latest.json"] == 2


def test_a_pinned_version_ignores_latest(fake_s3, make_store, clock, manifest, model_bytes):
    fake_s3.publish(new_version(manifest, V2), model_bytes)  # latest -> V2
    store = make_store(fake_s3, model_version=str(V1), refresh_seconds=1)
    assert store.get().version == V1
    clock.advance(100)
    assert store.get().version == V1
    assert "models/mnist/latest.json" not in fake_s3.reads


def test_concurrent_cold_requests_load_once(fake_s3, make_store):
    store = make_store(fake_s3)
    versions: list[int] = []
    threads = [
        threading.Thread(target=lambda: versions.append(store.get().version)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert versions == [V1] * 8
    assert fake_s3.reads[model_key(V1)] == 1
