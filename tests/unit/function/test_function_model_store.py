"""model_store: cold start from the registry, verification, refresh in the background, backoff,
deadlines, /tmp room, refusal, 503 with no model.

A fake in-memory S3 (optionally blocking) and a fake clock for refresh and retry schedules; the
model is the real fixture model. Requests wait on real events with deadlines: a test that
would hang fails on a join with a generous limit instead.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import threading

import numpy as np
import pytest

from errors import ModelUnavailable
from mlcore.deadline import Deadline
from mlcore.registry import Pointer
from model_store import DISK_SLACK_BYTES, SMALL_MODEL_BYTES, VERIFY_ATTEMPTS, _sha256
from tests.function_support import FakeS3, fixture_manifest, fixture_model, new_version

V1 = fixture_manifest()["version"]
V2 = V1 + 3600
POINTER = "models/mnist/latest.json"
SIZE = len(fixture_model())


def model_key(version: int) -> str:
    return f"models/mnist/{version}/model.tflite"


class BlockingS3(FakeS3):
    """get_object of the keys in `block` waits until `release` is set (a silent S3)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.block: set[str] = set()
        self.release = threading.Event()
        self.waiting = threading.Event()

    def get_object(self, Bucket: str, Key: str):  # noqa: N803
        if Key in self.block:
            self.waiting.set()
            assert self.release.wait(30), "the test never released the S3"
        return super().get_object(Bucket=Bucket, Key=Key)


def in_thread(call):
    """call() in a thread; returns (thread, results): a hung call is seen by join, not felt."""
    results: list = []

    def run():
        try:
            results.append(call())
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def test_cold_start_loads_the_version_latest_points_to_from_memory(fake_s3, make_store, tmp_path):
    store = make_store(fake_s3)
    assert store.current is None
    model = store.get()
    assert (model.name, model.version, model.labels[7]) == ("mnist", V1, "7")
    assert model.path is None  # a small model: verified and built in memory
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*.tflite"))
    assert set(model.timings_ms) == {"download", "verify", "build", "total"}
    assert model.predict(np.zeros((1, 28, 28))).shape == (1, 10)


def test_a_large_model_is_streamed_to_tmp_once_and_never_read_back(
    fake_s3, make_store, tmp_path, monkeypatch
):
    opened: list[tuple[str, str]] = []
    real_open = builtins.open

    def recording_open(file, mode="r", *args, **kwargs):
        opened.append((str(file), mode))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    model = make_store(fake_s3, memory_max_bytes=SIZE - 1).get()
    assert model.path == str(tmp_path / "models" / "mnist" / str(V1) / "model.tflite")
    assert os.path.getsize(model.path) == SIZE
    assert not [p for p in os.listdir(os.path.dirname(model.path)) if p.endswith(".part")]
    model_opens = [mode for path, mode in opened if "model.tflite" in path]
    assert model_opens == ["wb"]  # hashed while streaming; the interpreter maps the file natively
    assert fake_s3.reads[model_key(V1)] == 1


def test_requests_within_the_refresh_interval_do_no_io(fake_s3, make_store, clock):
    store = make_store(fake_s3, refresh_seconds=300)
    store.get()
    for _ in range(50):
        clock.advance(5)
        store.get()
    assert store.wait(10)
    assert fake_s3.reads[POINTER] == 1  # 250 s < 300 s
    clock.advance(60)
    store.get()
    assert store.wait(10)
    assert fake_s3.reads[POINTER] == 2


def test_a_newer_version_is_served_once_the_background_refresh_has_loaded_it(
    fake_s3, make_store, clock, manifest, model_bytes
):
    store = make_store(fake_s3, refresh_seconds=60, memory_max_bytes=0)
    first = store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes)
    clock.advance(59)
    assert store.get().version == V1
    clock.advance(1)
    assert store.get().version == V1  # the refresh starts; this request is not held up
    assert store.wait(10)
    assert store.get().version == V2
    assert not os.path.exists(first.path)  # the old file is removed from /tmp
    assert store.get().predict(np.zeros((1, 28, 28))).shape == (1, 10)


def test_a_due_refresh_never_holds_up_a_request(make_store, clock, manifest, model_bytes):
    s3 = BlockingS3()
    s3.publish(manifest, model_bytes)
    store = make_store(s3, refresh_seconds=10)
    store.get()
    s3.block = {POINTER}  # S3 goes silent
    clock.advance(11)
    thread, results = in_thread(store.get)
    thread.join(10)
    assert not thread.is_alive() and results[0].version == V1
    assert s3.waiting.wait(10)  # the refresh is stuck in the background...
    for _ in range(3):
        assert store.get().version == V1  # ...and every request answers with the current model
    s3.release.set()
    assert store.wait(10)


def test_a_cold_request_waits_at_most_its_deadline_and_the_load_goes_on(
    make_store, manifest, model_bytes
):
    s3 = BlockingS3()
    s3.publish(manifest, model_bytes)
    s3.block = {POINTER}
    store = make_store(s3)
    thread, results = in_thread(lambda: store.get(Deadline(0.05)))
    thread.join(10)
    assert not thread.is_alive(), "the request waited past its deadline"
    assert isinstance(results[0], ModelUnavailable) and "still loading" in results[0].message
    assert s3.waiting.is_set()  # answered while the registry read still hangs
    s3.release.set()  # S3 answers after all: the same load completes
    assert store.wait(10)
    assert store.current.version == V1
    assert store.get(Deadline(0)).version == V1
    assert s3.reads[POINTER] == 1  # joined, never started twice


def test_a_version_with_the_wrong_checksum_is_refused_and_the_good_one_keeps_serving(
    fake_s3, make_store, clock, manifest, model_bytes
):
    store = make_store(fake_s3, refresh_seconds=60, memory_max_bytes=0)
    store.get()
    tampered = bytearray(model_bytes)
    tampered[len(tampered) // 2] ^= 0xFF
    bad = new_version(manifest, V2)  # manifest of the original bytes, tampered bytes uploaded
    fake_s3.publish(bad, bytes(tampered))

    for _ in range(VERIFY_ATTEMPTS + 3):
        clock.advance(61)
        assert store.get().version == V1
        assert store.wait(10)
    # tried VERIFY_ATTEMPTS times (it may have been transient), then refused: never again
    assert fake_s3.reads[model_key(V2)] == VERIFY_ATTEMPTS
    assert "sha256" in store.refused[V2] and f"({VERIFY_ATTEMPTS} attempts)" in store.refused[V2]
    health = store.health()
    assert (health["status"], health["served"], health["pointer"]["version"]) == (
        "degraded",
        V1,
        V2,
    )
    assert health["refused"] == {str(V2): store.refused[V2]}
    refused_file = os.path.join(os.path.dirname(store.get().path), "..", str(V2), "model.tflite")
    assert not os.path.exists(refused_file)  # never left where it could be mistaken for a good one


def test_refusals_are_reported_once_per_attempt_and_end(
    fake_s3, make_store, clock, manifest, model_bytes
):
    failures: list[tuple] = []
    store = make_store(fake_s3, refresh_seconds=1)
    store._on_failure = lambda version, reason: failures.append((version, reason))
    store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes + b"extra")
    for _ in range(VERIFY_ATTEMPTS + 3):
        clock.advance(2)
        store.get()
        assert store.wait(10)
    store.get()  # reports are delivered in the thread of the next request
    assert [v for v, _ in failures] == [V2] * VERIFY_ATTEMPTS
    assert "bytes" in failures[0][1]


def test_reports_reach_the_hooks_in_the_requests_thread(fake_s3, make_store):
    threads: list[str] = []
    store = make_store(fake_s3)
    store._on_loaded = lambda model: threads.append(threading.current_thread().name)
    store.get()
    assert threads == [threading.current_thread().name]


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
def test_no_good_version_means_503_and_a_clear_message(
    manifest, model_bytes, make_store, break_it, request
):
    bad_manifest, bad_bytes = break_it(manifest, model_bytes)
    s3 = FakeS3()
    s3.publish(bad_manifest, bad_bytes)
    store = make_store(s3)
    assert store.health()["status"] == "starting"  # nothing tried yet
    with pytest.raises(ModelUnavailable) as raised:
        store.get()
    assert raised.value.status == 503 and raised.value.code == "MODEL_UNAVAILABLE"
    assert store.health()["status"] == "unavailable"  # tried, and nothing to serve
    # a model whose bytes do not match is tried again (it may heal); anything else is refused
    mismatch = request.node.callspec.id in ("truncated", "too-long")
    verdict = "did not verify" if mismatch else "was refused"
    assert f"version {V1} {verdict}" in raised.value.message
    assert store.current is None


def test_an_empty_registry_is_503_and_retried_with_backoff_not_on_every_request(
    make_store, manifest, model_bytes, clock
):
    s3 = FakeS3()
    store = make_store(s3, refresh_seconds=300)
    with pytest.raises(ModelUnavailable, match="could not be loaded.*next attempt is in 1 s") as e:
        store.get()
    # what is missing, and the setting a user who forgot NAME= (or ModelName) must look at
    message = str(e.value)
    assert "nothing is published as 'mnist' (models/mnist/latest.json does not exist" in message
    assert "NAME=" in message and "ModelName" in message
    for _ in range(5):  # within the backoff: answered at once, no I/O
        with pytest.raises(ModelUnavailable, match="could not be loaded"):
            store.get()
    assert s3.reads[POINTER] == 1
    clock.advance(1)
    with pytest.raises(ModelUnavailable, match="next attempt is in 2 s"):
        store.get()  # the second attempt fails too: the backoff doubles
    assert s3.reads[POINTER] == 2
    s3.publish(manifest, model_bytes)
    clock.advance(1)
    with pytest.raises(ModelUnavailable):
        store.get()  # 1 s of the 2 s backoff
    clock.advance(1)
    assert store.get().version == V1


def test_a_missing_object_of_a_version_is_named(make_store, manifest, model_bytes):
    """The pointer names a version whose manifest is not there: the 503 says which key."""
    s3 = FakeS3()
    s3.publish(manifest, model_bytes)
    del s3.objects[f"models/mnist/{V1}/manifest.json"]
    with pytest.raises(ModelUnavailable, match=f"models/mnist/{V1}/manifest.json does not exist"):
        make_store(s3).get()


def test_a_refused_first_version_is_replaced_by_a_good_one(
    make_store, manifest, model_bytes, clock
):
    s3 = FakeS3()
    s3.publish(manifest, model_bytes[:-1])
    store = make_store(s3)
    for _ in range(VERIFY_ATTEMPTS + 2):
        with pytest.raises(ModelUnavailable, match="did not verify|was refused"):
            store.get()
        clock.advance(60)
    assert s3.reads[model_key(V1)] == VERIFY_ATTEMPTS
    s3.publish(new_version(manifest, V2), model_bytes)
    assert store.get().version == V2


def test_s3_down_during_a_refresh_keeps_serving_and_retries_with_backoff(
    fake_s3, make_store, clock
):
    failures: list[str] = []
    store = make_store(fake_s3, refresh_seconds=10)
    store._on_failure = lambda version, reason: failures.append(reason)
    store.get()
    fake_s3.fail = ConnectionError("endpoint unreachable")
    clock.advance(10)  # t = 10 s: the refresh is due, and fails
    assert store.get().version == V1
    assert store.wait(10)
    for _ in range(16):  # t = 10.5 ... 18 s: a request every half second
        clock.advance(0.5)
        assert store.get().version == V1
        assert store.wait(10)
    # retried 1, 2 and 4 s after each failure (t = 11, 13, 17), not at each of the 16 requests
    assert fake_s3.reads[POINTER] - 1 == 4
    store.get()
    assert len(failures) == 4 and "ConnectionError" in failures[0]
    fake_s3.fail = None
    clock.advance(7)  # t = 25 s: 8 s after the last failure
    store.get()
    assert store.wait(10)
    assert fake_s3.reads[POINTER] == 6  # S3 is back: the backoff ends with this success
    clock.advance(9)
    store.get()
    assert store.wait(10)
    assert fake_s3.reads[POINTER] == 6  # the usual 10 s interval again


def test_a_pinned_version_ignores_latest(fake_s3, make_store, clock, manifest, model_bytes):
    fake_s3.publish(new_version(manifest, V2), model_bytes)  # latest -> V2
    store = make_store(fake_s3, model_version=str(V1), refresh_seconds=1)
    assert store.get().version == V1
    clock.advance(100)
    assert store.get().version == V1
    assert store.wait(10)
    assert POINTER not in fake_s3.reads


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


# -- /tmp: an upgrade needs room for the new model only ------------------------------------


class SmallDisk:
    """disk_free for the store: `size` bytes minus the .tflite files in the cache folder."""

    def __init__(self, root, size: int):
        self.root, self.size = root, size

    def __call__(self, path: str) -> int:
        used = sum(p.stat().st_size for p in self.root.rglob("*.tflite"))
        return self.size - used


BIG = 4 * SIZE
BESIDE = 2 * SIZE + DISK_SLACK_BYTES + 4096  # room for two models
IN_PLACE = SIZE + DISK_SLACK_BYTES + 4096  # room for one


@pytest.fixture
def disk_store(make_store, tmp_path):
    def make(s3, disk_bytes: int, **overrides):
        store = make_store(s3, memory_max_bytes=0, **overrides)
        store._disk_free = SmallDisk(tmp_path / "models", disk_bytes)
        return store

    return make


def test_an_upgrade_that_fits_beside_the_current_model_keeps_serving_throughout(
    fake_s3, disk_store, clock, manifest, model_bytes
):
    store = disk_store(fake_s3, disk_bytes=BESIDE, refresh_seconds=10)
    store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes)
    clock.advance(11)
    store.get()
    assert store.wait(10) and store.get().version == V2
    assert fake_s3.reads[model_key(V2)] == 1  # one pass: stored while verified


def test_an_upgrade_that_fits_only_in_place_of_the_current_model_succeeds(
    fake_s3, disk_store, clock, manifest, model_bytes
):
    store = disk_store(fake_s3, disk_bytes=IN_PLACE, refresh_seconds=10)
    old = store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes)
    clock.advance(11)
    store.get()
    assert store.wait(10) and store.get().version == V2
    assert fake_s3.reads[model_key(V2)] == 2  # verified first, then stored in place
    assert not os.path.exists(old.path)
    clock.advance(11)
    store.get()
    assert store.wait(10) and fake_s3.reads[model_key(V2)] == 2  # no download loop


def test_a_bad_upgrade_never_costs_the_current_model_its_place(
    fake_s3, disk_store, clock, manifest, model_bytes
):
    store = disk_store(fake_s3, disk_bytes=IN_PLACE, refresh_seconds=10)
    old = store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes[:-1] + b"x")  # checksum mismatch
    clock.advance(11)
    store.get()
    assert store.wait(10)
    assert store.get().version == V1 and os.path.exists(old.path)
    assert store.health()["retrying"] == {str(V2): 1}


def test_a_model_that_cannot_fit_at_all_is_refused_once_with_the_reason(
    fake_s3, disk_store, clock, manifest, model_bytes
):
    failures: list[tuple] = []
    store = disk_store(fake_s3, disk_bytes=IN_PLACE, refresh_seconds=10)
    store._on_failure = lambda version, reason: failures.append((version, reason))
    store.get()
    bigger = model_bytes + b"\0" * BIG
    fake_s3.publish(new_version(manifest, V2, bigger), bigger)
    for _ in range(4):
        clock.advance(11)
        assert store.get().version == V1
        assert store.wait(10)
    store.get()
    assert model_key(V2) not in fake_s3.reads  # never downloaded, not even once
    assert [v for v, _ in failures] == [V2]
    assert "EphemeralStorage" in failures[0][1] and "cannot fit" in failures[0][1]


def test_a_cold_start_with_a_model_too_large_for_tmp_is_a_503_that_says_why(
    disk_store, manifest, model_bytes
):
    s3 = FakeS3()
    s3.publish(manifest, model_bytes)
    store = disk_store(s3, disk_bytes=SIZE // 2)
    with pytest.raises(ModelUnavailable, match="EphemeralStorage"):
        store.get()
    assert model_key(V1) not in s3.reads


def test_running_out_of_space_while_writing_is_a_refusal_not_a_loop(
    fake_s3, make_store, monkeypatch, clock
):
    import errno

    real_open = builtins.open

    class FullFile:
        def __init__(self, file):
            self._file = file

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._file.close()

    def full_disk_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return FullFile(handle) if str(file).endswith(".part") else handle

    monkeypatch.setattr(builtins, "open", full_disk_open)
    store = make_store(fake_s3, memory_max_bytes=0)
    for _ in range(3):
        with pytest.raises(ModelUnavailable, match="ran out of space"):
            store.get()
        clock.advance(120)
    assert fake_s3.reads[model_key(V1)] == 1


def test_a_model_that_did_not_verify_once_is_served_when_it_verifies(
    fake_s3, make_store, clock, manifest, model_bytes
):
    """A model object read while it was replaced (or a truncated body) is not refused for the
    environment's life: tried again after the backoff, served once its bytes match."""
    store = make_store(fake_s3, refresh_seconds=60)
    store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes[:-5])
    clock.advance(61)
    store.get()
    assert store.wait(10) and store.get().version == V1
    health = store.health()
    assert (health["status"], health["retrying"], health["loading"]) == (
        "degraded",
        {str(V2): 1},
        None,
    )
    fake_s3.objects[model_key(V2)] = model_bytes  # healthy again
    clock.advance(2)  # the first backoff (1 s), not the refresh interval
    store.get()
    assert store.wait(10) and store.get().version == V2
    health = store.health()
    assert (health["status"], health["retrying"], health["last_error"]) == ("ok", {}, None)


def test_a_refused_pointer_keeps_the_last_good_version_and_health_says_why(
    fake_s3, make_store, clock
):
    store = make_store(fake_s3, refresh_seconds=60)
    store.get()
    fake_s3.objects[POINTER] = b'{"version": 1e400}'
    clock.advance(61)
    store.get()
    assert store.wait(10) and store.get().version == V1
    health = store.health()
    assert health["status"] == "degraded"
    assert health["pointer_refused"] == "latest.json: $.version is 1e400: numbers must be finite"
    fake_s3.objects[POINTER] = json.dumps({"version": V1, "revision": 9}).encode()  # repaired
    clock.advance(61)
    store.get()
    assert store.wait(10)
    assert (store.health()["status"], store.health()["pointer_refused"]) == ("ok", None)


def test_a_refusal_lasts_until_the_pointer_changes(fake_s3, make_store, clock, manifest):
    store = make_store(fake_s3, refresh_seconds=60)
    store.get()
    broken = new_version(manifest, V2)
    broken["labels"] = []  # refused by the schema: permanent
    fake_s3.publish(broken, fixture_model())
    clock.advance(61)
    store.get()
    assert store.wait(10) and V2 in store.refused
    reads = fake_s3.reads[f"models/mnist/{V2}/manifest.json"]
    clock.advance(61)
    store.get()
    assert store.wait(10) and fake_s3.reads[f"models/mnist/{V2}/manifest.json"] == reads
    fake_s3.publish(new_version(manifest, V2), fixture_model())  # fixed, and the pointer moves
    pointer = json.loads(fake_s3.objects[POINTER])
    fake_s3.objects[POINTER] = json.dumps({**pointer, "revision": 7}).encode()
    clock.advance(61)
    store.get()
    assert store.wait(10) and store.get().version == V2 and store.refused == {}


def test_a_version_still_loading_is_not_a_fault(fake_s3, make_store, clock, manifest, model_bytes):
    """While a refresh downloads the version the pointer names, the served one is ok."""
    store = make_store(fake_s3, refresh_seconds=60)
    store.get()
    fake_s3.publish(new_version(manifest, V2), model_bytes)
    store.pointer = Pointer.parse(fake_s3.objects[POINTER])  # read, not loaded yet
    health = store.health()
    assert (health["status"], health["served"], health["loading"]) == ("ok", V1, V2)


@pytest.mark.parametrize("size", [0, SIZE, SMALL_MODEL_BYTES, SMALL_MODEL_BYTES + 1, 3 << 20])
def test_models_of_every_size_are_checked_with_the_same_sha256(size):
    """Small models are hashed without OpenSSL (CPython's own sha256), large ones with it: the
    digest a manifest is checked against is the same either way."""
    import hashlib

    data = np.random.default_rng(size).bytes(size)
    digest = _sha256(size)
    for start in range(0, size, 1 << 16):  # in chunks, as _download streams them
        digest.update(data[start : start + (1 << 16)])
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    # CPython's own is _sha2 from 3.12 (Lambda's 3.13); before, hashlib's (make mutation's 3.11)
    own = sys.version_info >= (3, 12) and size <= SMALL_MODEL_BYTES
    assert type(digest).__module__ == ("_sha2" if own else "_hashlib"), type(digest)
