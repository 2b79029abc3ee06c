"""`make smoke` and examples/client.py against the real local API on loopback (the fixture
model published to the loopback S3), as a user runs them: separate processes, no CA given."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from local.processes import free_port
from tests.local_support import ROOT, local_api, publish_fixture

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(s3_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("smoke")
    with local_api(folder, publish_fixture(s3_server, folder), default_state=True) as running:
        yield running


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_smoke_passes_against_the_local_api_finding_its_certificate(api):
    done = run("-m", "examples.smoke", "--url", api.url, "--api-key", api.key)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "8 passed, 0 failed"
    assert any("without the API key" in line and line.startswith("ok") for line in lines)
    assert any("with a PNG" in line for line in lines)


def test_smoke_fails_with_a_wrong_key(api):
    done = run("-m", "examples.smoke", "--url", api.url, "--api-key", "wrong-key")
    assert done.returncode == 1
    assert "FAIL  GET /v1/models/mnist/metadata gives the input shape: 403" in done.stdout
    assert "refused the key" in done.stdout


def test_smoke_without_the_key_says_the_api_needs_it(api):
    done = run("-m", "examples.smoke", "--url", api.url)
    assert done.returncode == 1
    failed = next(line for line in done.stdout.splitlines() if line.startswith("FAIL"))
    assert "403 FORBIDDEN: " in failed and "needs its key" in failed and "API_KEY=" in failed
    assert "shape=" not in failed


def test_smoke_fails_when_nothing_answers():
    done = run("-m", "examples.smoke", "--url", f"https://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "could not be reached" in done.stdout


def test_the_example_client_predicts_the_example_digits(api):
    for example in ("examples/digit.png", "examples/digit.json"):
        done = run("examples/client.py", api.url, example, "--key", api.key)
        assert done.returncode == 0, done.stdout + done.stderr
        answer = json.loads(done.stdout)
        assert [p["label"] for p in answer["predictions"]] == ["7"]
    done = run("examples/client.py", api.url, "examples/digit.png")  # no key
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "FORBIDDEN"
