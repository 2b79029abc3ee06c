"""SnapStart's runtime hooks (functions/inference/snapstart.py) on the real model store over an
in-memory bucket: the model loaded before the snapshot; after a restore a new S3 client, and
the pointer re-read at once (a version published since the snapshot is served)."""

from __future__ import annotations

import logging

import snapstart
from tests.function_support import FakeS3, fixture_model, new_version

log = logging.getLogger("test-snapstart")


def test_before_snapshot_loads_and_verifies_the_model(make_store, fake_s3, manifest):
    store = make_store(fake_s3)
    assert store.current is None
    assert snapstart.before_snapshot(store, log, timeout=30) is True
    assert store.current.version == manifest["version"]


def test_before_snapshot_without_a_model_says_so(make_store):
    store = make_store(FakeS3())
    assert snapstart.before_snapshot(store, log, timeout=5) is False
    assert store.current is None


def test_after_restore_makes_a_new_client_and_reads_the_pointer_at_once(
    make_store, fake_s3, manifest, clock
):
    clients = []

    def factory():
        clients.append(object())
        return fake_s3

    store = make_store(fake_s3)
    store._client_factory = factory  # count the clients the store makes
    snapstart.before_snapshot(store, log, timeout=30)
    assert len(clients) == 1
    # published after the snapshot; the refresh interval has not passed (the clock stands still)
    v2 = manifest["version"] + 1
    fake_s3.publish(new_version(manifest, v2, fixture_model()), fixture_model())
    store.get()
    store.wait(5)
    assert store.current.version == manifest["version"]  # no refresh due yet
    snapstart.after_restore(store, log, budget=30)
    assert len(clients) == 2
    assert store.current.version == v2


def test_after_restore_without_a_model_starts_the_load(make_store, fake_s3, manifest):
    store = make_store(fake_s3)
    snapstart.after_restore(store, log, budget=30)
    assert store.current.version == manifest["version"]


def test_hooks_are_registered_with_the_runtime_module():
    import snapshot_restore_py

    import app  # noqa: F401 (registers at import)

    befores = [f for f, _, _ in snapshot_restore_py.get_before_snapshot()]
    afters = [f for f, _, _ in snapshot_restore_py.get_after_restore()]
    assert befores and afters
