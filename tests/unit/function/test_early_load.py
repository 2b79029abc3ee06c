"""app.py's early load (config.loads_model_at_import): on an on-demand cold start of the API
function the model's load starts while app imports; anywhere else importing app starts nothing
and reads nothing. Each case imports app in a fresh process (an import happens once per
process), with the S3 client's factory replaced: no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.function_support import ROOT, log_records, metric_values, template_environment

# Imports app the way the Lambda runtime does, after replacing the store's S3 client factory
# with one that records which thread called it and then fails (a registry that cannot be read);
# then asks for the model as the first request would, and prints what it saw as the last line.
DRIVER = """
import json, sys, threading
import model_store

calls = []

def unreachable():
    calls.append(threading.current_thread().name)
    raise ConnectionRefusedError("the registry cannot be reached in this test")

model_store.create_s3_client = unreachable
import app

# what only a model kept in /tmp needs: shutil with bz2 and lzma, about 2 ms of a cold start;
# none of the function's own modules (or mlcore's) imports them at the top
ours = ("/functions/inference/", "/mlcore/")
disk_modules = sorted(
    f"{name}: {imported}"
    for name, module in list(sys.modules.items())
    if any(part in (getattr(module, "__file__", None) or "") for part in ours)
    for imported in ("shutil", "bz2", "lzma")
    if imported in vars(module)
)
early = app._early_store
started_during_import = early is not None and (early._job is not None or bool(calls))
if early is not None:
    early.wait(10)
threads = [t.name for t in threading.enumerate() if t.name.startswith("model-")]
reads_by_import = list(calls)
try:
    app.get_store().get()
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
print(json.dumps({
    "early": early is not None,
    "same_store": early is None or app.get_store() is early,
    "started_during_import": started_during_import,
    "reads_by_import": reads_by_import,
    "threads_after_import": threads,
    "first_get": error,
    "disk_modules_imported_by_app": disk_modules,
}))
"""

ON_DEMAND_API = {"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "_HANDLER": "app.lambda_handler"}


def import_app(**environ: str) -> tuple[dict, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_HANDLER"))},
        **template_environment(BucketName="early-load-test"),
        "PYTHONPATH": os.pathsep.join((str(ROOT / "functions" / "inference"), str(ROOT))),
        "POWERTOOLS_METRICS_NAMESPACE": "EarlyLoadTest",
        **environ,
    }
    completed = subprocess.run(
        [sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout.strip().splitlines()
    return json.loads(out[-1]), "\n".join(out[:-1])


@pytest.mark.parametrize(
    "environ",
    [
        {},  # not on Lambda: tests, the local runner without an init type
        {**ON_DEMAND_API, "TRACING_MODE": "xray-sdk"},
        {**ON_DEMAND_API, "_HANDLER": "batch.lambda_handler"},
    ],
    ids=["not-lambda", "xray-sdk", "batch"],
)
def test_importing_app_without_the_gate_starts_no_thread_and_reads_nothing(environ):
    seen, _ = import_app(**environ)
    assert not seen["early"] and not seen["started_during_import"]
    assert seen["reads_by_import"] == [] and seen["threads_after_import"] == []
    assert "could not be loaded" in seen["first_get"]  # the first get() loads (and fails) itself
    assert seen["disk_modules_imported_by_app"] == []


def test_on_an_on_demand_start_the_load_begins_during_import_and_reports_to_the_request():
    seen, stdout = import_app(**ON_DEMAND_API, TRACING_MODE="lambda")
    assert seen["early"] and seen["same_store"] and seen["started_during_import"]
    assert seen["reads_by_import"] == ["model-load"]  # in the store's thread, once
    # the early load failed: the first get() answers with its reason (no second attempt within
    # the backoff), and its report is delivered then, in the asking thread (app's hooks)
    assert "could not be loaded" in seen["first_get"]
    assert "ConnectionRefusedError" in seen["first_get"] or "registry" in seen["first_get"]
    failures = [r for r in log_records(stdout) if r.get("message") == "model load failed"]
    assert len(failures) == 1 and "ConnectionRefusedError" in failures[0]["reason"]
    assert metric_values(stdout, "ModelLoadFailures") == [1]


@pytest.mark.parametrize("init_type", ["provisioned-concurrency", "snap-start"])
def test_where_init_runs_ahead_of_requests_the_preload_loads_and_waits_as_before(init_type):
    seen, stdout = import_app(**{**ON_DEMAND_API, "AWS_LAMBDA_INITIALIZATION_TYPE": init_type})
    assert not seen["early"]  # app.preload_model's path, not the early one
    assert seen["reads_by_import"] == ["model-load"] and seen["threads_after_import"] == []
    assert "model preload failed" in stdout
