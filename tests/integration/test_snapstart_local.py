"""SnapStart played by the Docker-free runner (SnapStart=true): the environment runs the
function's before-snapshot hook (the model loaded and verified during init), then its
after-restore hook (a new S3 client, the pointer re-read) before its first event, which the
model then answers without waiting. Against the fixture model on the loopback S3."""

from __future__ import annotations

import json

import pytest

from local.function import ExecutionEnvironment, load_function
from local.template import Template, parse_parameter_overrides
from tests.local_support import environ, no_leftovers, parameters, publish_fixture

pytestmark = pytest.mark.integration


def run_environment(published, log_path, snapstart: str, event):
    overrides = [*parameters(published), f"SnapStart={snapstart}"]
    with environ(published["env"]):
        template = Template(parameter_overrides=parse_parameter_overrides(overrides))
        function = load_function(template, "InferenceFunction", {})
    with no_leftovers(), open(log_path, "ab", buffering=0) as output:
        env = ExecutionEnvironment(function, output, owner="test-snapstart")
        try:
            return function, env.invoke(event)
        finally:
            env.close()


def test_snapstart_environments_load_before_the_snapshot_and_restore_fresh(
    s3_server, tmp_path, load_event
):
    published = publish_fixture(s3_server, tmp_path)
    log_path = tmp_path / "function.log"
    function, result = run_environment(published, log_path, "true", load_event("health.json"))
    assert function.snapstart
    assert result.ok and result.payload["statusCode"] == 200
    assert json.loads(result.payload["body"])["status"] == "ok"
    log = log_path.read_text()
    order = [
        log.index('"model loaded before the snapshot"'),
        log.index("RESTORE_START"),
        log.index('"restored from a snapshot"'),
        log.index("RESTORE_REPORT"),
        log.index("START RequestId"),
    ]
    assert order == sorted(order), log[-3000:]
    # the model was loaded once, during init, before the snapshot: not on the request's path
    assert log.count('"model loaded"') == 1
    assert log.index('"model loaded"') < log.index("RESTORE_START")


def test_without_snapstart_nothing_is_played(s3_server, tmp_path, load_event):
    published = publish_fixture(s3_server, tmp_path)
    log_path = tmp_path / "function.log"
    function, result = run_environment(published, log_path, "false", load_event("health.json"))
    assert not function.snapstart
    assert result.ok and result.payload["statusCode"] == 200
    log = log_path.read_text()
    assert "RESTORE_START" not in log and "before the snapshot" not in log
