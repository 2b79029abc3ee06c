"""Shared fixtures: a real S3-protocol server on loopback, the committed model, the events."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from local.s3 import DUMMY_CREDENTIALS, REGION, moto_server

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"
EVENTS_DIR = ROOT / "events"
FAKE_CREDENTIALS = {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="session")
def s3_server():
    """A real moto_server on a free loopback port; yields its endpoint URL."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Points the standard AWS configuration at the loopback S3 and creates a fresh bucket."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3(s3_env):
    import boto3

    return boto3.client("s3")


@pytest.fixture
def model_fixture_dir() -> Path:
    return FIXTURE_DIR


@pytest.fixture
def published_model(s3_env, tmp_path):
    """The committed fixture model published with the training job's own publisher."""
    from training.publish import publish

    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    artifact = tmp_path / "artifacts" / "mnist" / str(manifest["version"])
    artifact.mkdir(parents=True)
    for name in ("model.tflite", "manifest.json"):
        shutil.copy(FIXTURE_DIR / name, artifact / name)
    publish(artifact, s3_env, "models")
    return {
        "bucket": s3_env,
        "prefix": "models",
        "name": manifest["name"],
        "version": manifest["version"],
        "manifest": manifest,
        "endpoint": os.environ["AWS_ENDPOINT_URL_S3"],
    }


@pytest.fixture
def load_event():
    def load(name: str) -> dict:
        return json.loads((EVENTS_DIR / name).read_text())

    return load
