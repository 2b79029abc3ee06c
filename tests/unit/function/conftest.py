"""Fixtures for the inference function's unit tests: no network, the committed fixture model."""

from __future__ import annotations

import pytest

from tests.function_support import (
    FakeClock,
    FakeS3,
    fixture_manifest,
    fixture_model,
    reset_powertools,
    template_environment,
)


@pytest.fixture(autouse=True)
def fresh_powertools(monkeypatch):
    reset_powertools(monkeypatch)


@pytest.fixture
def manifest() -> dict:
    return fixture_manifest()


@pytest.fixture
def model_bytes() -> bytes:
    return fixture_model()


@pytest.fixture
def fake_s3(manifest, model_bytes) -> FakeS3:
    """An in-memory bucket holding the fixture model behind latest.json."""
    s3 = FakeS3()
    s3.publish(manifest, model_bytes)
    return s3


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(tmp_path, clock):
    """ModelStore(settings overrides, s3) over a fake S3 and clock, wired to app's metrics hooks."""
    import dataclasses

    import app
    from config import load_settings
    from model_store import ModelStore

    defaults = load_settings(template_environment())

    def make(s3: FakeS3, **overrides) -> ModelStore:
        settings = dataclasses.replace(
            defaults, **{"cache_dir": str(tmp_path / "models"), **overrides}
        )
        return ModelStore(
            settings,
            lambda: s3,
            clock=clock,
            span=app._subsegment,
            on_loaded=app._record_load,
            on_failure=app._record_failure,
        )

    return make


@pytest.fixture
def serve(monkeypatch, make_store):
    """Route app.get_store to a store over the given fake S3; returns that store."""
    import app

    def install(s3: FakeS3, **overrides):
        store = make_store(s3, **overrides)
        monkeypatch.setattr(app, "get_store", lambda: store)
        return store

    return install
