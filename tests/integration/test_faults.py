"""Fault injection on real sockets: an S3 endpoint that never answers, one that refuses
connections, one that drops them, one that stalls mid-body (tests/faults.py, a proxy in front
of moto_server), at cold start and during a refresh; through the handler (obstore and the real
model store, in this process) and through the local API (python -m local.api, HTTPS). And /tmp
for real: a small tmpfs where this process may mount one.

What a user notices is checked, not a duration: the answer (503 MODEL_UNAVAILABLE at a cold
start, 200 from the current model during a refresh), that it came while the endpoint was still
failing, and that the invocation ended inside Lambda's time (remaining time left, no "Task
timed out"). The times are in docs/api.md ("Limits and deadlines") (measured, not asserted)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from local import processes
from local.bootstrap import LambdaContext
from tests.faults import FaultyS3
from tests.function_support import (
    EVENTS_DIR,
    FIXTURE_DIR,
    function_configured,
    invoke,
    metric_values,
    new_version,
    reset_powertools,
)
from tests.local_support import parameters, publish_fixture

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]
# `make test` runs the worst (silent: every call waits for the client's timeouts); the other
# faults end sooner and run in `make test-slow`.
MODES = ["silent"] + [pytest.param(m, marks=pytest.mark.slow) for m in ("refuse", "reset", "stall")]
TIMEOUT_S = 15  # the template's FunctionTimeout
PREDICT = json.loads((EVENTS_DIR / "predict-instances.json").read_text())
MANIFEST = json.loads((FIXTURE_DIR / "manifest.json").read_text())


def publish_newer(bucket: str, version: int) -> None:
    """The fixture's bytes as another version, latest.json moved to it (the publisher's way)."""
    from training.publish import publish

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(_tmpdir())) / "mnist" / str(version)
        folder.mkdir(parents=True)
        shutil.copy(FIXTURE_DIR / "model.tflite", folder / "model.tflite")
        (folder / "manifest.json").write_text(json.dumps(new_version(MANIFEST, version)))
        publish(folder, bucket, "models")


@contextlib.contextmanager
def _tmpdir():
    import tempfile

    with tempfile.TemporaryDirectory() as name:
        yield name


@pytest.fixture(autouse=True)
def fresh_powertools(monkeypatch):
    reset_powertools(monkeypatch)


@pytest.fixture
def proxy(s3_server):
    with FaultyS3(s3_server) as faulty:
        yield faulty


@pytest.fixture
def function_env(published_model, proxy, monkeypatch, tmp_path):
    """The function as the template configures it (a refresh due at every request), its S3
    calls through the fault proxy; the real app.get_store (obstore). Forgotten after the test."""
    import app

    bucket = published_model["bucket"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.endpoint)
    with function_configured(
        monkeypatch, tmp_path / "cache", BucketName=bucket, ModelRefreshSeconds="0"
    ):
        yield bucket
        proxy.close()  # releases what hangs, so the loading thread ends
        if app.get_store.cache_info().currsize:
            app.get_store().wait(30)


def timed_invoke(event: dict):
    context = LambdaContext(function_name="InferenceFunction")  # the template's 15 s timeout
    context._deadline_ms = int(time.time() * 1000) + TIMEOUT_S * 1000
    result = invoke(event, context)
    return result, context.get_remaining_time_in_millis()


def fault(proxy: FaultyS3, mode: str, key: str) -> None:
    proxy.only = key if mode == "stall" else None
    proxy.stall_after = 16  # the status line and headers, then a few bytes of the body
    proxy.mode = mode


@pytest.mark.parametrize("mode", MODES)
def test_cold_start_against_a_failing_s3_answers_503_inside_the_timeout(
    function_env, proxy, mode, capsys
):
    fault(proxy, mode, "model.tflite")
    result, remaining_ms = timed_invoke(PREDICT)
    assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE"), result.body
    assert remaining_ms > 0  # answered, never a Lambda timeout
    assert proxy.requests or mode == "refuse"  # the function did try the registry


@pytest.mark.parametrize("mode", MODES)
def test_a_warm_environment_keeps_answering_while_its_refresh_fails(
    function_env, proxy, mode, capsys
):
    import app

    served = invoke(PREDICT).body["model"]["version"]
    publish_newer(function_env, served + 1)
    fault(proxy, mode, "latest.json")
    for _ in range(3):
        result, remaining_ms = timed_invoke(PREDICT)
        assert result.status == 200 and result.body["model"]["version"] == served
        assert remaining_ms > 0
    proxy.mode = "reset"  # what hangs is dropped: the refresh fails now...
    assert app.get_store().wait(30)
    assert invoke(PREDICT).body["model"]["version"] == served  # ...is reported, retried later
    proxy.mode = "pass"
    deadline = time.monotonic() + 30
    while invoke(PREDICT).body["model"]["version"] == served:  # S3 is back: upgraded soon
        assert time.monotonic() < deadline, "never upgraded after S3 came back"
        app.get_store().wait(30)
        time.sleep(0.2)
    out = capsys.readouterr().out
    assert metric_values(out, "ModelLoadFailures")  # the failed refreshes were counted


# -- through the local API ----------------------------------------------------------------


def post(url: str, ca: str, key: str) -> requests.Response:
    return requests.post(
        url + "/predict",
        data=base64.b64decode(PREDICT["body"]),
        headers={"x-api-key": key, "Content-Type": "application/json"},
        verify=ca,
        timeout=60,
    )


@contextlib.contextmanager
def faulty_api(s3_server, tmp_path, *overrides: str):
    """The local API (one execution environment) against the fixture on moto, through a
    fault proxy; yields (url, ca, key, proxy, log)."""
    published = publish_fixture(s3_server, tmp_path)
    with FaultyS3(s3_server, mode="silent") as proxy:
        port, key, state, log = (
            processes.free_port(),
            "fault-key",
            tmp_path / "api",
            tmp_path / "log",
        )
        env = {**published["env"], "AWS_ENDPOINT_URL_S3": proxy.endpoint}
        options = ["--api-key", key, "--environments", "1", "--quiet", "--parameter-overrides"]
        # a 1 s deadline: the same mechanism as the default 4 s, three times sooner
        options += [*parameters(published), "ModelRefreshSeconds=0", "DeadlineSeconds=1"]
        options += overrides
        with processes.local_api(*options, port=port, state_dir=state, log=log, env=env):
            yield f"https://127.0.0.1:{port}", str(state / "ca.pem"), key, proxy, state


def test_through_the_local_api_a_silent_s3_is_a_503_cold_and_a_200_warm(s3_server, tmp_path):
    with faulty_api(s3_server, tmp_path) as (url, ca, key, proxy, state):
        answer = post(url, ca, key)  # cold, S3 silent: the emulator used to answer 502
        assert answer.status_code == 503 and answer.json()["code"] == "MODEL_UNAVAILABLE"
        proxy.mode = "pass"
        processes.wait_until(lambda: post(url, ca, key).status_code == 200, 60, None, "model")
        proxy.mode = "silent"  # warm, refresh due at each request, S3 silent again
        for _ in range(3):
            answer = post(url, ca, key)
            assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == "7"
        log = (state / "function.log").read_text()
    assert "Task timed out" not in log and "Traceback" not in log


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_through_the_local_api_every_fault_cold_and_warm(s3_server, tmp_path, mode):
    with faulty_api(s3_server, tmp_path) as (url, ca, key, proxy, state):
        fault(proxy, mode, "model.tflite")
        answer = post(url, ca, key)
        assert answer.status_code == 503 and answer.json()["code"] == "MODEL_UNAVAILABLE"
        proxy.mode = "pass"
        proxy.only = None
        processes.wait_until(lambda: post(url, ca, key).status_code == 200, 60, None, "model")
        fault(proxy, mode, "latest.json")
        for _ in range(3):
            assert post(url, ca, key).status_code == 200
        log = (state / "function.log").read_text()
    assert "Task timed out" not in log


def test_make_invoke_with_an_event_that_is_not_a_request_prints_a_400(s3_server, tmp_path):
    published = publish_fixture(s3_server, tmp_path)
    command = [sys.executable, "-m", "local.invoke", "--event", str(EVENTS_DIR / "bad-event.json")]
    command += ["--runner", "local", "--function", "InferenceFunction"]
    command += ["--parameter-overrides", *parameters(published)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=published["env"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    response = json.loads(result.stdout)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["code"] == "UNSUPPORTED_EVENT"
    assert "Traceback" not in result.stdout + result.stderr


# -- /tmp for real: a small tmpfs --------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A tmpfs of 96 KiB mounted for the test (root only): room for one fixture model with
    the store's slack, not for two."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"this machine does not let the test mount a tmpfs: {done.stderr!r}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_on_a_small_tmp_an_upgrade_needs_room_for_the_new_model_only(
    published_model, small_tmpfs, monkeypatch, capsys
):
    """Before: warm environments kept the old version forever, downloading the new one at
    every refresh (ENOSPC), while new environments served the new one."""
    import app
    from model_store import DISK_SLACK_BYTES

    bucket = published_model["bucket"]
    with function_configured(
        monkeypatch, small_tmpfs / "models", BucketName=bucket, ModelRefreshSeconds="0"
    ):
        monkeypatch.setenv("MODEL_MEMORY_MAX_BYTES", "0")  # every model through /tmp
        first = invoke(PREDICT).body["model"]["version"]
        size = MANIFEST["files"]["model.tflite"]["size"]
        free = shutil.disk_usage(small_tmpfs).free
        assert free < size + DISK_SLACK_BYTES  # the new one cannot fit beside the old one
        publish_newer(bucket, first + 1)
        invoke(PREDICT)
        assert app.get_store().wait(30)
        assert invoke(PREDICT).body["model"]["version"] == first + 1
        files = sorted(p.name for p in small_tmpfs.rglob("*") if p.is_file())
        assert files == ["model.tflite"]
        reads_before = app.get_store().refused.copy()
        for _ in range(3):  # no download loop once it is served
            invoke(PREDICT)
            assert app.get_store().wait(30)
        assert app.get_store().refused == reads_before == {}


def test_a_model_larger_than_tmp_is_refused_once_with_its_reason(
    s3, s3_env, small_tmpfs, monkeypatch, capsys
):
    import hashlib

    big = os.urandom(200 * 1024)
    version = int(uuid.uuid4().int % 10**9) + 1
    manifest = new_version(MANIFEST, version)
    manifest["files"]["model.tflite"] = {
        "size": len(big),
        "sha256": hashlib.sha256(big).hexdigest(),
    }
    base = f"models/mnist/{version}"
    s3.put_object(Bucket=s3_env, Key=f"{base}/model.tflite", Body=big)
    s3.put_object(Bucket=s3_env, Key=f"{base}/manifest.json", Body=json.dumps(manifest).encode())
    s3.put_object(
        Bucket=s3_env,
        Key="models/mnist/latest.json",
        Body=json.dumps({"version": version}).encode(),
    )
    with function_configured(monkeypatch, small_tmpfs / "models", BucketName=s3_env):
        monkeypatch.setenv("MODEL_MEMORY_MAX_BYTES", "0")
        result = invoke(PREDICT)
        assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE")
        assert "EphemeralStorage" in result.body["error"]
        time.sleep(1.1)  # past the first retry's backoff: the next request asks again
        assert invoke(PREDICT).code == "MODEL_UNAVAILABLE"
    out = capsys.readouterr().out
    assert metric_values(out, "ModelLoadFailures", role="stable") == [
        1.0
    ]  # refused once, remembered
    assert not any(small_tmpfs.rglob("*.tflite"))
