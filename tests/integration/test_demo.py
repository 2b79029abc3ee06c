"""python -m local.demo, the project's main command: its own steps, shortened training,
exit 0 and a table; nothing left running or listening afterwards, also after Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from local import processes
from tests.local_support import FIXTURE_DIR, ROOT, free_port, no_leftovers

VERSION = json.loads((FIXTURE_DIR / "manifest.json").read_text())["version"]

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Whatever the test started, directly or not, has stopped when it ends."""
    with no_leftovers():
        yield


def demo_command(tmp_path, s3_port: int, api_port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "local.demo",
        "--artifacts",
        str(tmp_path / "artifacts"),
        "--state-dir",
        str(tmp_path / "state"),
        "--s3-port",
        str(s3_port),
        "--api-port",
        str(api_port),
        "--api-key",
        "demo-test-key",
        "--bucket",
        "demo-models",
        *extra,
    ]


def run_demo(tmp_path, s3_port: int, api_port: int, *extra: str, timeout=300):
    command = demo_command(tmp_path, s3_port, api_port, *extra)
    env = {k: v for k, v in os.environ.items() if k != "API_KEY"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def assert_ports_free(s3_port: int, api_port: int) -> None:
    assert processes.port_free(s3_port) and processes.port_free(api_port)


@pytest.fixture
def artifact(tmp_path):
    """The committed fixture model as an artifact the demo finds and reuses."""
    artifact = tmp_path / "artifacts" / "mnist" / str(VERSION)
    artifact.mkdir(parents=True)
    for name in ("model.tflite", "manifest.json"):
        shutil.copy(FIXTURE_DIR / name, artifact / name)
    return artifact


@pytest.mark.slow  # 28 s of training; the steps are each held by the fast suite's own tests
def test_demo_trains_publishes_serves_and_reports(tmp_path):
    s3_port, api_port = free_port(), free_port()
    # 2 epochs on the sample: a real model in seconds, well clear of the int8 accuracy gate
    # (1 epoch on a 2,000-digit subset came within 0.6 points of it)
    quick = ["--retrain", "--epochs", "2", "--examples", "5"]
    result = run_demo(tmp_path, s3_port, api_port, *quick, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in (
        "[1/5] S3",
        "[2/5] training",
        "[3/5] published",
        "[4/5] local API",
        "[5/5] requests",
    ):
        assert step in out
    header = next(line for line in out.splitlines() if line.startswith("request "))
    assert header.split() == [
        "request",
        "true",
        "predicted",
        "confidence",
        "latency",
        "ms",
        "status",
    ]
    for name in (
        "example 1:",
        "example 5:",
        "PNG image:",
        "TF Serving:",
        "metadata:",
        "bad shape:",
        "no API key:",
        "page to draw on: GET /",
    ):
        assert name in out
    assert "400 INVALID_SHAPE" in out and "403 FORBIDDEN" in out
    assert f"Page to draw on: https://127.0.0.1:{api_port}/ (the API key filled in" in out
    assert "accuracy on 500 held-out test examples, with 95% intervals" in out
    assert "Demo passed" in out
    assert (tmp_path / "state" / "api" / "function.log").is_file()
    assert len(list((tmp_path / "artifacts" / "mnist").glob("*/model.tflite"))) == 1
    assert_ports_free(s3_port, api_port)


@pytest.mark.slow  # 10 s
def test_demo_reuses_a_model_and_fails_clearly_on_a_busy_port(tmp_path, artifact):
    s3_port, api_port = free_port(), free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", api_port))
        busy.listen()
        result = run_demo(tmp_path, s3_port, api_port, timeout=120)
    assert result.returncode == 1
    assert f"port {api_port} (API) is busy" in result.stderr
    assert_ports_free(s3_port, api_port)

    result = run_demo(tmp_path, s3_port, api_port)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"reusing {artifact}" in result.stdout
    assert f"version {VERSION}" in result.stdout
    assert_ports_free(s3_port, api_port)


def test_ctrl_c_stops_everything_the_demo_started(tmp_path, artifact):
    s3_port, api_port = free_port(), free_port()
    demo = subprocess.Popen(
        demo_command(tmp_path, s3_port, api_port),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # as soon as S3 listens, the demo still has publishing, the API and requests ahead
        processes.wait_until(
            lambda: not processes.port_free(s3_port), 60, demo, "the demo", interval=0.02
        )
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, out + err
    assert "interrupted: stopping what the demo started" in err
    assert_ports_free(s3_port, api_port)


@pytest.mark.slow  # 13 s; Ctrl-C stopping everything is also held by the test above
def test_serve_keeps_the_page_up_until_ctrl_c(tmp_path, artifact):
    import requests

    s3_port, api_port = free_port(), free_port()
    out = tmp_path / "demo.out"
    with open(out, "w") as stdout:
        demo = subprocess.Popen(
            demo_command(tmp_path, s3_port, api_port, "--serve"),
            cwd=ROOT,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        processes.wait_until(
            lambda: "Serving until Ctrl-C" in out.read_text(), 120, demo, "the demo"
        )
        ca = tmp_path / "state" / "api" / "ca.pem"
        page = requests.get(f"https://127.0.0.1:{api_port}/", verify=str(ca), timeout=30)
        assert page.status_code == 200 and 'id="api-key" value="demo-test-key"' in page.text
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, out.read_text()[-3000:]
    assert "Demo passed" in out.read_text()
    assert_ports_free(s3_port, api_port)
