"""Every event in events/ answers the status events/expected.json names, through the
Docker-free runner's execution environment (one process for the module, as a warm Lambda),
against the fixture model published on the loopback S3; python -m local.invoke itself (one
process per event, like sam local invoke) on a few of them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from local.function import ExecutionEnvironment, load_function
from local.template import Template, parse_parameter_overrides
from tests.function_support import answered_labels
from tests.local_support import (
    FIXTURE_DIR,
    ROOT,
    environ,
    no_leftovers,
    parameters,
    publish_fixture,
)

pytestmark = pytest.mark.integration

EVENTS = ROOT / "events"
EXPECTED = json.loads((EVENTS / "expected.json").read_text())
EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json") if p.name != "expected.json")
LABELS = json.loads((FIXTURE_DIR / "manifest.json").read_text())["labels"]


@pytest.fixture(scope="module")
def published(s3_server, tmp_path_factory):
    return publish_fixture(s3_server, tmp_path_factory.mktemp("invoke"))


@pytest.fixture(scope="module")
def environment(published, tmp_path_factory):
    """The function in one execution environment, as local.invoke runs it."""
    with environ(published["env"]):
        template = Template(parameter_overrides=parse_parameter_overrides(parameters(published)))
        function = load_function(template, "InferenceFunction", {})
    log = tmp_path_factory.mktemp("log") / "function.log"
    with no_leftovers(), open(log, "ab", buffering=0) as output:
        env = ExecutionEnvironment(function, output, owner="test-invoke")
        yield env
        env.close()


def invoke(
    event: str, published: dict, *extra: str, overrides: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "local.invoke", "--event", event, "--runner", "local"]
    command += ["--function", "InferenceFunction"]
    command += [*extra, "--parameter-overrides", *parameters(published), *overrides]
    with no_leftovers():  # the execution environment is gone with the invocation
        return subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=published["env"]
        )


def labels_in(body: dict) -> list[str]:
    return answered_labels(body, LABELS)


def test_every_event_has_an_expectation():
    assert EVENT_FILES and set(EVENT_FILES) == set(EXPECTED)


@pytest.mark.parametrize("event", EVENT_FILES)
def test_event_gives_the_expected_status(event, environment):
    result = environment.invoke(json.loads((EVENTS / event).read_text()))
    assert result.ok, result.payload
    expected = EXPECTED[event]
    assert result.payload["statusCode"] == expected["status"], result.payload
    body = json.loads(result.payload["body"])
    if "code" in expected:
        assert body["code"] == expected["code"] and body["error"]
    if "labels" in expected:
        assert labels_in(body) == expected["labels"]


def test_local_invoke_prints_the_response_and_lambdas_lines(published):
    result = invoke("events/predict-instances.json", published)
    assert result.returncode == 0, result.stderr[-3000:]
    response = json.loads(result.stdout)  # stdout is the response and nothing else
    assert response["statusCode"] == 200 and labels_in(json.loads(response["body"])) == ["7"]
    # what Lambda writes around the invocation, on stderr
    assert "START RequestId: " in result.stderr and "END RequestId: " in result.stderr
    assert "REPORT RequestId: " in result.stderr and "Init Duration" in result.stderr


def test_parameter_overrides_reach_the_function(published):
    """--parameter-overrides wins over the template's defaults (ModelName=other: no such
    model in the registry, so the function has nothing to serve)."""
    result = invoke("events/health-deep.json", published, overrides=("ModelName=other",))
    response = json.loads(result.stdout)
    assert response["statusCode"] == 503, result.stdout
    # the real S3 client's "not found", told as what a user who forgot NAME= needs to read
    message = json.loads(response["body"])["error"]
    assert "nothing is published as 'other' (models/other/latest.json does not exist" in message
    assert "NAME=" in message and "FileNotFoundError" not in message


def test_handler_error_exits_non_zero(published, tmp_path):
    """A function that cannot run (here: a setting the template would never give it) fails the
    invocation, as Lambda reports it. (An event that is not a request does not: it is a 400.)"""
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"InferenceFunction": {"MAX_INSTANCES": "-1"}}))
    result = invoke("events/health.json", published, "--env-vars", str(env_vars))
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert set(error) >= {"errorMessage", "errorType", "stackTrace", "requestId"}
    assert f"[ERROR] {error['errorType']}" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", "events/does-not-exist.json"], "cannot read the event"),
        (["--event", "events/health.json", "--function", "Nope"], "no function 'Nope'"),
        # two functions: which one runs must be said, as sam local invoke asks
        (
            ["--event", "events/health.json"],
            "InferenceFunction, PreTrafficHookFunction, MonitorFunction, BatchFunction); name one",
        ),
        (["--event", "events/health.json", "--parameter-overrides", "Nope=1"], "unknown parameter"),
        (["--event", "events/health.json", "--parameter-overrides", "Nope"], "not a valid format"),
    ],
)
def test_setup_errors_exit_2_with_a_message(args, message):
    with no_leftovers():
        result = subprocess.run(
            [sys.executable, "-m", "local.invoke", "--runner", "local", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""


def test_runs_beside_an_unrelated_process_with_the_same_markers(published):
    """Another checkout's runs on the same machine carry these words in their arguments; the
    checks here look at this test's own processes only, so they neither fail nor touch it."""
    decoy = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "local-invoke#1", "moto_server"]
        + ["local-api:3000", "--port"],
        stdin=subprocess.PIPE,
    )
    try:
        result = invoke("events/health.json", published)
        assert result.returncode == 0 and json.loads(result.stdout)["statusCode"] == 200
        assert decoy.poll() is None  # untouched
    finally:
        decoy.stdin.close()
        decoy.wait(timeout=30)
