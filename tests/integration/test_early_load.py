"""The early load on the real path: a fresh process of the function on the runtime's Python
(.venv-function), the environment an on-demand Lambda start has (`_HANDLER`,
`AWS_LAMBDA_INITIALIZATION_TYPE`), the real obstore client against moto_server on loopback.
app starts the model's load while it imports (config.loads_model_at_import); the first request
is served from it, and still carries the load's log line and metrics; a registry that fails
during that load gives the first request the same 503 as the first request's own load does."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from local import processes
from tests.function_support import (
    EVENTS_DIR,
    ROOT,
    log_records,
    metric_values,
    template_environment,
)

pytestmark = pytest.mark.integration

PYTHON = ROOT / ".venv-function" / "bin" / "python"
ON_DEMAND_API = {"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "_HANDLER": "app.lambda_handler"}

# The Lambda runtime's order: import the handler's module, then the first invocation. Prints,
# as its last line, whether a load was under way (or done) when the import returned, and the
# first answer.
DRIVER = f"""
import json, sys
import app

early = app._early_store
# under way, done, or already failed when the import returned
started_during_import = early is not None and (
    early._job is not None or early.current is not None or early._last_error is not None
)
sys.path.append({str(ROOT)!r})  # the local runner's LambdaContext, after the function's imports
from local.bootstrap import LambdaContext

with open({str(EVENTS_DIR / "predict-instances.json")!r}) as f:
    event = json.load(f)
response = app.lambda_handler(event, LambdaContext(function_name="InferenceFunction"))
print(json.dumps({{"started_during_import": started_during_import, "response": response}}))
"""


def cold_start(bucket: str, endpoint: str, cache, **environ: str) -> tuple[dict, str]:
    """One execution environment's import and first request; (its report, its stdout)."""
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: run make setup")
    env = {
        "PATH": os.environ["PATH"],
        **template_environment(BucketName=bucket),
        "PYTHONPATH": str(ROOT / "functions" / "inference"),
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "MODEL_CACHE_DIR": str(cache),
        **environ,
    }
    completed = subprocess.run(
        [str(PYTHON), "-c", DRIVER], env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


def answer(report: dict) -> tuple[int, dict]:
    response = report["response"]
    return response["statusCode"], json.loads(response["body"])


def test_the_load_started_during_import_serves_the_first_request(published_model, tmp_path):
    report, stdout = cold_start(
        published_model["bucket"], published_model["endpoint"], tmp_path, **ON_DEMAND_API
    )
    assert report["started_during_import"]  # the import started it, not the request
    status, body = answer(report)
    assert status == 200, body
    assert body["model"]["version"] == published_model["version"]
    assert len(body["predictions"]) == 1 and body["predictions"][0]["label"] == "7"
    loaded = [r for r in log_records(stdout) if r.get("message") == "model loaded"]
    assert len(loaded) == 1 and loaded[0]["model_version"] == published_model["version"]
    assert loaded[0]["function_request_id"]  # logged within the first invocation
    (load_ms,) = metric_values(stdout, "ModelLoadTime")
    assert load_ms > 0


@pytest.mark.parametrize("failure", ["nothing-published", "connection-refused"])
def test_a_registry_failure_during_the_early_load_gives_the_first_request_todays_503(
    s3_env, failure, tmp_path
):
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]  # an empty bucket on moto_server
    if failure == "connection-refused":
        endpoint = f"http://127.0.0.1:{processes.free_port()}"  # nothing listens there
    answers, failures = [], []
    for name, environ in (("early", ON_DEMAND_API), ("on first request", {})):
        report, stdout = cold_start(s3_env, endpoint, tmp_path / name, **environ)
        assert report["started_during_import"] == (name == "early")
        answers.append(answer(report))
        failures.append(metric_values(stdout, "ModelLoadFailures"))
    (early_status, early_body), (lazy_status, lazy_body) = answers
    assert early_status == lazy_status == 503
    assert early_body["code"] == lazy_body["code"] == "MODEL_UNAVAILABLE"
    cause = early_body["error"].split("could not be loaded: ")[1].split(";")[0]
    assert cause == lazy_body["error"].split("could not be loaded: ")[1].split(";")[0]
    if failure == "nothing-published":
        assert "nothing is published as 'mnist'" in cause
    assert failures[0] == failures[1] == [1]  # counted in the first request, once
