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


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )


def test_smoke_passes_against_the_local_api_finding_its_certificate(api):
    done = run("-m", "examples.smoke", "--url", api.url, "--api-key", api.key)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "10 passed, 0 failed"
    for refused in ("without the API key, /predict", "without the API key, /health/deep"):
        assert any(refused in line and line.startswith("ok") for line in lines), refused
    assert any(line.startswith("ok    GET /health answers 200 without a key") for line in lines)
    assert any("with a PNG" in line for line in lines)


def test_smoke_fails_with_a_wrong_key(api):
    done = run("-m", "examples.smoke", "--url", api.url, "--api-key", "wrong-key")
    assert done.returncode == 1
    assert "ok    GET /health answers 200 without a key" in done.stdout  # open
    assert "FAIL  GET /health/deep answers 200 with the served model: 403" in done.stdout
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
    done = run("examples/client.py", api.url, "--health", "deep", "--key", api.key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["model"]["name"] == "mnist"
    done = run("examples/client.py", api.url, "--health", "deep")  # no key
    assert (done.returncode, json.loads(done.stdout)["code"]) == (1, "FORBIDDEN")
    done = run("examples/client.py", api.url, "--health")  # open
    assert done.returncode == 0 and json.loads(done.stdout)["status"] in ("ok", "starting")


@pytest.mark.parametrize("api_type", ["rest", "http"])
def test_smoke_signs_with_sigv4_against_an_iam_api_of_either_type(s3_server, tmp_path, api_type):
    """ApiAuthMode IAM, REST API or HTTP API (payload format 2.0): every request signed with the
    standard AWS credentials (here the loopback's, in the environment) passes; the local API
    checks each signature against them, and an unsigned request is refused."""
    published = publish_fixture(s3_server, tmp_path)
    overrides = (f"ApiType={api_type}", "ApiAuthMode=IAM")
    with local_api(tmp_path, published, 1, default_state=True, overrides=overrides) as api:
        done = run("-m", "examples.smoke", "--url", api.url, "--sigv4", env=published["env"])
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[-1] == "10 passed, 0 failed"
        for refused in ("unsigned, /predict is refused", "unsigned, /health/deep is refused"):
            assert any(line.startswith("ok") and refused in line for line in lines), refused
        unsigned = run("-m", "examples.smoke", "--url", api.url, env=published["env"])
        assert unsigned.returncode == 1 and "403" in unsigned.stdout
        served = {"rest": "REST API, payload format 1.0", "http": "HTTP API, payload format 2.0"}
        assert served[api_type] in api.log.read_text()
