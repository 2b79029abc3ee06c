"""python -m local.invoke on every event in events/: the status events/expected.json names,
through the Docker-free runner, against the fixture model published on the loopback S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.local_support import ROOT, env_vars_file, processes_with

pytestmark = pytest.mark.integration

EVENTS = ROOT / "events"
EXPECTED = (
    json.loads((EVENTS / "expected.json").read_text())
    if (EVENTS / "expected.json").is_file()
    else {}
)
EVENT_FILES = sorted(
    p.name for p in EVENTS.glob("*.json") if p.name not in ("env.json", "expected.json")
)


def invoke(event: str, env_file, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "local.invoke",
            "--event",
            event,
            "--env-vars",
            str(env_file),
            "--runner",
            "local",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=dict(os.environ),
    )


def labels_in(body: dict, labels: list[str]) -> list[str]:
    if "predictions" in body and body["predictions"] and isinstance(body["predictions"][0], dict):
        return [p["label"] for p in body["predictions"]]
    rows = body.get("predictions", body.get("outputs"))
    return [labels[i] for i in np.argmax(rows, axis=1)]


def test_every_event_has_an_expectation():
    assert EVENT_FILES and set(EVENT_FILES) <= set(EXPECTED), set(EVENT_FILES) - set(EXPECTED)


@pytest.mark.parametrize("event", EVENT_FILES)
def test_event_gives_the_expected_status(event, published_model, tmp_path):
    result = invoke(f"events/{event}", env_vars_file(tmp_path, published_model))
    assert result.returncode == 0, result.stderr[-3000:]
    response = json.loads(result.stdout)  # stdout is the response and nothing else
    expected = EXPECTED[event]
    assert response["statusCode"] == expected["status"], response
    body = json.loads(response["body"])
    if "code" in expected:
        assert body["code"] == expected["code"] and body["error"]
    if "labels" in expected:
        assert labels_in(body, published_model["manifest"]["labels"]) == expected["labels"]
    # what Lambda writes around the invocation, on stderr
    assert "START RequestId: " in result.stderr and "END RequestId: " in result.stderr
    assert "REPORT RequestId: " in result.stderr and "Init Duration" in result.stderr
    assert processes_with("local-invoke#") == []


def test_handler_error_exits_non_zero(published_model, tmp_path):
    event = tmp_path / "not-api-gateway.json"
    event.write_text('{"hello": "world"}')
    result = invoke(str(event), env_vars_file(tmp_path, published_model))
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert set(error) >= {"errorMessage", "errorType", "stackTrace", "requestId"}
    assert f"[ERROR] {error['errorType']}" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", "events/does-not-exist.json"], "cannot read the event"),
        (["--event", "events/health.json", "--function", "Nope"], "no function 'Nope'"),
        (["--event", "events/health.json", "--parameter-overrides", "Nope=1"], "unknown parameter"),
    ],
)
def test_setup_errors_exit_2_with_a_message(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "local.invoke", "--runner", "local", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""
