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
    assert_right,
    function_configured,
    invoke,
    metric_values,
    new_version,
    reference_probabilities,
    reset_powertools,
)
from tests.local_support import parameters, publish_fixture

pytestmark = [
    pytest.mark.integration,
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
        proxy.published = published  # for tests that publish more versions
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


# -- the registry's own faults (issue 25): flaky, truncated, changing, dripping S3 ---------------
# Every answer is checked against the model file run directly with LiteRT: a 200 is never a
# wrong answer, whatever the registry does.

SCHEMA1_DIR = FIXTURE_DIR.parent / "mnist-schema1"  # a second, different model


def reference(folder: Path) -> list[list[float]]:
    return reference_probabilities(folder, json.loads(base64.b64decode(PREDICT["body"])))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "heals_without_help"),
    [("error", True), ("drip", True), ("truncate", False), ("change", True)],
)
def test_a_registry_fault_at_cold_start_never_serves_a_wrong_answer_and_heals(
    function_env, proxy, mode, heals_without_help, capsys
):
    """error: every 2nd request a 503 SlowDown or 500 InternalError (the client's retry
    absorbs it); drip: 1 KiB every 50 ms; truncate: the model's body cut after 16 bytes (the
    version did not verify: retried with backoff, served once S3 is healthy); change: every
    other read of the model has a byte flipped (not verified once, served on the next try)."""
    import app

    expected = reference(FIXTURE_DIR)
    proxy.only = "model.tflite" if mode in ("truncate", "change") else None
    proxy.stall_after = 16
    proxy.mode = mode
    answers = []
    deadline = time.monotonic() + 60
    while not answers or answers[-1].status != 200:
        assert time.monotonic() < deadline, f"never served under {mode}: {answers[-1].body}"
        if len(answers) == 3 and not heals_without_help:
            proxy.mode = "pass"  # S3 is healthy again: the refusal must not be for good
        result, remaining_ms = timed_invoke(PREDICT)
        assert remaining_ms > 0 and result.status in (200, 503), result.body
        answers.append(result)
        if result.status == 503:
            assert result.code == "MODEL_UNAVAILABLE"
            app.get_store().wait(30)
            time.sleep(0.3)
    assert_right(answers[-1].body, expected)
    if mode in ("truncate", "change"):
        assert any("did not verify" in a.body.get("error", "") for a in answers[:-1])
    health = invoke(json.loads((EVENTS_DIR / "health.json").read_text())).body
    assert health["status"] == "ok" and health["registry"]["retrying"] == {}


def write_pointer(bucket: str, raw: bytes) -> None:
    import boto3

    boto3.client("s3").put_object(Bucket=bucket, Key="models/mnist/latest.json", Body=raw)


@pytest.mark.slow
def test_a_hostile_pointer_keeps_the_last_good_version_and_health_says_why(function_env, proxy):
    """The fault probe's pointers: a share of 1e400 (every request was a 500), Infinity, a
    share "50", a version in Arabic-Indic digits. None is a 5xx; health says degraded."""
    import app

    health_event = json.loads((EVENTS_DIR / "health.json").read_text())
    served = invoke(PREDICT).body["model"]["version"]
    expected = reference(FIXTURE_DIR)
    pointers = {
        b'{"version": %d, "canary": {"version": 7, "share": 1e400}}' % served: "canary",
        b'{"version": %d, "canary": {"version": 7, "share": Infinity}}' % served: "canary",
        b'{"version": %d, "canary": {"version": 7, "share": "50"}}' % served: "canary",
        '{"version": "\u0661\u0662"}'.encode(): "pointer",
        b'{"version": 1e400}': "pointer",
    }
    for raw, refused in pointers.items():
        write_pointer(function_env, raw)
        app.get_store().wait(30)
        for _ in range(2):  # the first starts the refresh, the second sees its result
            result = invoke(PREDICT)
            assert result.status == 200, result.body
            assert_right(result.body, expected)
            app.get_store().wait(30)
        health = invoke(health_event).body
        assert health["registry"][f"{refused}_refused"], (raw, health)
        if refused == "pointer":
            assert health["status"] == "degraded"


@pytest.mark.slow
def test_pointer_churn_under_concurrent_load_never_serves_a_wrong_answer(s3_server, tmp_path):
    """Four clients post while the pointer moves: publish (two different models by turns), a
    canary at 10, 50 and 90%, promote, rollback, a corrupted pointer and its repair. Every
    answer is a 200 from the model file of the version it names (run directly with LiteRT) or
    a 503 within the deadline; never a 5xx of another kind, never a wrong answer."""
    import threading

    folders = {0: FIXTURE_DIR, 1: SCHEMA1_DIR}
    expected = {turn: reference(folder) for turn, folder in folders.items()}
    version_model: dict[int, int] = {}  # version -> which model file (turn)
    with faulty_api(s3_server, tmp_path, "ModelRefreshSeconds=0") as (url, ca, key, proxy, st):
        proxy.mode = "pass"
        published = json.loads((FIXTURE_DIR / "manifest.json").read_text())["version"]
        version_model[published] = 0
        bucket = proxy.published["bucket"]
        stop, problems, answered = threading.Event(), [], []

        def client() -> None:
            while not stop.is_set():
                started = time.monotonic()
                answer = post(url, ca, key)
                if time.monotonic() - started > TIMEOUT_S:  # the function's timeout
                    problems.append(("slow", time.monotonic() - started))
                if answer.status_code == 503:
                    continue
                if answer.status_code != 200:
                    problems.append((answer.status_code, answer.text[:300]))
                    continue
                body = answer.json()
                version = body["model"]["version"]
                try:
                    assert_right(body, expected[version_model[version]])
                except (AssertionError, KeyError) as exc:
                    problems.append((version, str(exc)[:300]))
                answered.append(version)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            churn(s3_server, bucket, tmp_path, folders, version_model, published)
        finally:
            stop.set()
            for thread in threads:
                thread.join(90)
        log = (st / "function.log").read_text()
    assert problems == []
    assert len(set(answered)) >= 3, "the churn did not reach the clients"
    assert {version_model[v] for v in answered} == {0, 1}  # both models answered
    assert "Task timed out" not in log and "Traceback" not in log


def churn(s3_server, bucket, tmp_path, folders, version_model, first: int) -> None:
    """The pointer moves under the clients (the training side's own commands, on the real S3
    protocol), each step given a few refreshes to reach them."""
    from tests.local_support import environ, s3_environment
    from training.publish import publish
    from training.rollout import promote, rollback

    def artifact(version: int, turn: int) -> Path:
        folder = tmp_path / "churn" / "mnist" / str(version)
        folder.mkdir(parents=True)
        source = folders[turn]
        shutil.copy(source / "model.tflite", folder / "model.tflite")
        manifest = json.loads((source / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps(new_version(manifest, version)))
        version_model[version] = turn
        return folder

    def settle() -> None:
        time.sleep(1.5)

    with environ(s3_environment(s3_server)):
        v2, v3, v4 = first + 1, first + 2, first + 3
        publish(artifact(v2, 1), bucket, "models")  # another model, served to all
        settle()
        for share in (10, 50, 90):  # the fixture's bytes again as a canary at three shares
            folder = tmp_path / "churn" / "mnist" / str(v3)
            publish(folder if folder.exists() else artifact(v3, 0), bucket, "models", canary=share)
            settle()
        promote(bucket, "models", "mnist", v3)
        settle()
        rollback(bucket, "models", "mnist")  # back to v2
        settle()
        write_pointer(bucket, b'{"version": 1e400}')  # corrupted: the last good keeps serving
        settle()
        publish(artifact(v4, 1), bucket, "models", repair_pointer=True)  # the repair path
        settle()
