"""local.function + local/bootstrap.py: the execution environments, on a small handler.

These start local processes (the environments) but touch no network.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from local import function as lf
from local.template import Template

HANDLER = """
import json, os, sys, time

INIT_PID = os.getpid()
print("init phase")

def handler(event, context):
    action = event.get("action")
    if action == "raise":
        raise ValueError("boom: " + event.get("why", ""))
    if action == "sleep":
        started = time.time()
        time.sleep(event["seconds"])
        return {"pid": os.getpid(), "start": started, "end": time.time()}
    if action == "unserializable":
        return {"value": object()}
    if action == "exit":
        os._exit(3)
    if action == "emf":  # a metric, as Powertools prints one, among other lines
        print("before")
        print(json.dumps({"_aws": {"Timestamp": 1764300000000, "CloudWatchMetrics": [
            {"Namespace": "N", "Dimensions": [["d"]], "Metrics": [{"Name": "M"}]}]},
            "d": "x", "M": [1, 2, 2]}))
        print("after", file=sys.stderr)
        return {"printed": 3}
    print("handler says hi")
    return {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "aws_request_id": context.aws_request_id,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "remaining": context.get_remaining_time_in_millis(),
        },
        "event": event,
    }
"""

TEMPLATE = """\
    Parameters:
      Cache: {Type: String, Default: /tmp/cache}
    Globals:
      Function:
        Runtime: python3.13
        MemorySize: 256
        Timeout: 2
    Resources:
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: code
          Handler: handler_module.handler
          Environment:
            Variables:
              CACHE_DIR: !Ref Cache
              GREETING: hello
"""


@pytest.fixture
def function(tmp_path, monkeypatch) -> lf.LocalFunction:
    monkeypatch.setenv("SHELL_SECRET", "x")
    code = tmp_path / "code"
    code.mkdir()
    (code / "handler_module.py").write_text(HANDLER)
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(TEMPLATE))
    return lf.load_function(Template(template), None, {})


@pytest.fixture
def log(tmp_path):
    with open(tmp_path / "function.log", "ab", buffering=0) as f:
        yield f


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "function.log").read_text()


@pytest.fixture
def environment(function, log):
    env = lf.ExecutionEnvironment(function, log)
    yield env
    env.close()


def test_handler_runs_with_lambdas_environment_and_context(environment, function, tmp_path):
    result = environment.invoke({"hello": "world"}, request_id="req-1")
    assert result.ok and result.cold and result.init_ms is not None
    answer = result.payload
    assert answer["event"] == {"hello": "world"}
    assert answer["context"] == {
        "function_name": "Fn",
        "function_version": "$LATEST",
        "aws_request_id": "req-1",
        "memory_limit_in_mb": "256",  # a str, as in awslambdaric
        "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:Fn",
        "log_group_name": "aws/lambda/Fn",  # sam's value (no leading slash)
        "remaining": answer["context"]["remaining"],
    }
    assert 0 < answer["context"]["remaining"] <= 2000
    env = answer["env"]
    assert env["GREETING"] == "hello" and env["_HANDLER"] == "handler_module.handler"
    assert env["LAMBDA_TASK_ROOT"] == answer["cwd"] == str(tmp_path / "code")
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"  # as Lambda and sam local set it
    assert "SHELL_SECRET" not in env  # nothing else of the caller's shell
    # Lambda's /tmp is private to the environment
    assert env["CACHE_DIR"] == str(environment.tmp / "cache") and env["TMPDIR"] == str(
        environment.tmp
    )
    # init ran once, in the same process as the invocations
    again = environment.invoke({})
    assert again.ok and not again.cold and again.init_ms is None
    assert again.payload["pid"] == answer["pid"] == answer["init_pid"]
    lines = log_text(tmp_path).splitlines()
    assert "init phase" in lines and "handler says hi" in lines
    assert "START RequestId: req-1 Version: $LATEST" in lines
    assert "END RequestId: req-1" in lines
    reports = [line for line in lines if line.startswith("REPORT RequestId:")]
    assert len(reports) == 2
    assert "Init Duration" in reports[0] and "Init Duration" not in reports[1]
    assert "Memory Size: 256 MB" in reports[0] and "Max Memory Used:" in reports[0]


def test_handler_exception_is_lambdas_error_document(environment, tmp_path):
    result = environment.invoke({"action": "raise", "why": "because"}, request_id="req-2")
    assert not result.ok
    assert result.payload["errorType"] == "ValueError"
    assert result.payload["errorMessage"] == "boom: because"
    assert result.payload["requestId"] == "req-2"
    assert any("handler_module.py" in frame for frame in result.payload["stackTrace"])
    assert not any("bootstrap.py" in frame for frame in result.payload["stackTrace"])
    assert "[ERROR] ValueError: boom: because" in log_text(tmp_path)
    assert environment.invoke({}).ok  # the environment survives


def test_unserializable_answer(environment):
    result = environment.invoke({"action": "unserializable"})
    assert not result.ok and result.payload["errorType"] == "Runtime.MarshalError"


def test_timeout_kills_the_environment(environment, tmp_path):
    result = environment.invoke({"action": "sleep", "seconds": 30}, request_id="slow")
    assert not result.ok
    assert result.payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in result.payload["errorMessage"]
    assert not environment.alive and not environment.tmp.exists()
    text = log_text(tmp_path)
    assert "slow Task timed out after 2.00 seconds" in text and "END RequestId: slow" in text


def test_process_exit_is_an_error(environment):
    result = environment.invoke({"action": "exit"})
    assert not result.ok and result.payload["errorType"] == "Runtime.ExitError"
    assert not environment.alive


def test_import_error_is_reported_at_each_invocation(function, log, tmp_path):
    (function.code_dir / "handler_module.py").write_text("import no_such_module\n")
    env = lf.ExecutionEnvironment(function, log)
    try:
        for _ in range(2):
            result = env.invoke({})
            assert not result.ok
            assert result.payload["errorType"] == "Runtime.ImportModuleError"
            assert "No module named 'no_such_module'" in result.payload["errorMessage"]
    finally:
        env.close()


def test_pool_scales_on_demand_and_never_shares_an_environment(function, log):
    """Four concurrent events, two environments at most: both get used, and no environment
    ever runs two events at once."""
    from concurrent.futures import ThreadPoolExecutor

    pool = lf.EnvironmentPool({"Fn": function}, log, size=2)
    event = {"action": "sleep", "seconds": 0.3}
    try:
        with ThreadPoolExecutor(4) as threads:
            results = list(threads.map(lambda _: pool.run("Fn", event), range(4)))
    finally:
        pool.close()
    assert all(r.ok for r in results)
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for r in results:
        by_pid.setdefault(r.payload["pid"], []).append((r.payload["start"], r.payload["end"]))
    assert len(by_pid) <= 2
    for spans in by_pid.values():
        spans.sort()
        assert all(
            a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)
        )
    assert sum(r.cold for r in results) == len(by_pid)  # one cold start per environment


def test_pool_is_sams_runner(function, log):
    """LocalApigwService calls invoke(name, event_json, stdout=...) and reads stdout."""
    from io import StringIO

    from samcli.lib.utils.stream_writer import StreamWriter

    pool = lf.EnvironmentPool({"Fn": function}, log, size=1)
    try:
        out = StringIO()
        pool.invoke("Fn", json.dumps({"hello": "sam"}), stdout=StreamWriter(out))
        assert json.loads(out.getvalue())["event"] == {"hello": "sam"}
        with pytest.raises(lf.FunctionFailed, match="ValueError"):
            pool.invoke("Fn", json.dumps({"action": "raise"}), stdout=StreamWriter(StringIO()))
        with pytest.raises(lf.FunctionError, match="no local function"):
            pool.run("Other", {})
    finally:
        pool.close()
    assert pool.is_debugging() is False


def test_pool_close_ends_every_environment(function, log):
    pool = lf.EnvironmentPool({"Fn": function}, log, size=2)
    pid = pool.run("Fn", {}).payload["pid"]
    environments = list(pool._all)
    pool.close()
    assert all(not env.alive and not env.tmp.exists() for env in environments)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_bad_function_setups(tmp_path):
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent("""\
        Resources:
          Fn: {Type: AWS::Serverless::Function,
               Properties: {CodeUri: missing, Handler: a.b, Runtime: python3.13}}
          Node: {Type: AWS::Serverless::Function,
                 Properties: {CodeUri: ., Handler: a.b, Runtime: nodejs20.x}}
    """)
    )
    template = Template(tmp_path / "template.yaml")
    with pytest.raises(lf.FunctionError, match="not a folder"):
        lf.load_function(template, "Fn", {})
    with pytest.raises(lf.FunctionError, match="only python"):
        lf.load_function(template, "Node", {})


def test_warnings(function, tmp_path, monkeypatch):
    """Variables of the env-vars file the template does not declare (sam ignores them) and a
    function that would reach the real S3."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    warnings = []
    env_vars = {"Fn": {"GREETING": "hi", "TYPO_VAR": "x"}}
    loaded = lf.load_function(Template(tmp_path / "template.yaml"), None, env_vars, warnings.append)
    assert loaded.environment["GREETING"] == "hi" and "TYPO_VAR" not in loaded.environment
    assert len(warnings) == 2 and "TYPO_VAR" in warnings[0]
    assert "AWS_ENDPOINT_URL_S3 is not set" in warnings[1]


class RecordingForwarder:
    """local.cloudwatch.EmfForwarder's interface: lines, then flush() after each REPORT."""

    def __init__(self):
        self.lines: list[bytes] = []
        self.flushed: list[list[bytes]] = []

    def __call__(self, line: bytes) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        self.flushed.append(list(self.lines))


def test_forwarded_output_is_read_and_flushed_before_the_invocation_returns(
    function, log, tmp_path
):
    """With a forwarder (the local CloudWatch), every line still reaches the log, and the
    invocation returns only after its last line (REPORT) went through the forwarder: a
    metric printed by the handler is there as soon as the caller has the answer."""
    forwarder = RecordingForwarder()
    env = lf.ExecutionEnvironment(function, log, forward=forwarder)
    try:
        result = env.invoke({"action": "emf"}, request_id="req-emf")
        # no waiting here: the flush happened before invoke returned
        assert result.ok and result.payload == {"printed": 3}
        (flushed,) = forwarder.flushed
        texts = [line.decode() for line in flushed]
        emf = [t for t in texts if t.startswith('{"_aws"')]
        assert len(emf) == 1 and json.loads(emf[0])["M"] == [1, 2, 2]
        assert texts[-1].startswith("REPORT RequestId: req-emf")
        assert "after\n" in texts  # stderr goes the same way
        assert env.invoke({"action": "raise"}).ok is False
        assert len(forwarder.flushed) == 2
    finally:
        env.close()
    lines = log_text(tmp_path).splitlines()
    assert "before" in lines and "after" in lines and any(x.startswith('{"_aws"') for x in lines)
    assert "[ERROR] ValueError: boom: " in lines


def test_pool_gives_every_environment_the_forwarder(function, log):
    forwarder = RecordingForwarder()
    pool = lf.EnvironmentPool({"Fn": function}, log, size=1, forward=forwarder)
    try:
        assert pool.run("Fn", {"action": "emf"}).ok
    finally:
        pool.close()
    assert any(line.startswith(b'{"_aws"') for line in forwarder.flushed[0])
