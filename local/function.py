"""The function, run locally the way Lambda runs it: in execution environments.

An execution environment is one process (``local/bootstrap.py``) that imports the handler
once and then serves one event at a time, with

- exactly the environment ``sam local`` would give it (``local.template``), plus what the
  Lambda runtime itself sets (``_HANDLER``, ``LAMBDA_TASK_ROOT``, ``TZ``, ...), and nothing
  else of the caller's shell;
- its own ``/tmp``: a private folder (``TMPDIR``, and any declared variable whose value is
  under ``/tmp``, like ``MODEL_CACHE_DIR=/tmp/models``), removed with the environment;
- the function's ``Timeout`` enforced: past it, the environment is killed and the
  invocation fails with Lambda's "Task timed out" error;
- its stdout and stderr (logs, EMF metric lines, START/END/REPORT) going to one log; with a
  ``forward`` callable (``local.cloudwatch.EmfForwarder``), each line also goes to it and its
  ``flush()`` is called after each REPORT line, as CloudWatch Logs turns EMF lines into metrics
  in AWS: the output then passes through a pipe that a thread of this process reads, and an
  invocation returns only once its REPORT line (printed after everything the handler printed)
  has been read and flushed.

Why processes: an execution environment has its own module state, environment variables and
/tmp, and can be killed at its timeout; only a process gives all four. ``EnvironmentPool``
holds up to N of them per function, started on demand, kept warm and reused (most recently
used first), never serving two events at once; it is a runner for SAM CLI's local API
service (``invoke`` + ``is_debugging``), as sam's Docker runner is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from local.bootstrap import recv_message, send_message
from local.template import Template

BOOTSTRAP = Path(__file__).resolve().with_name("bootstrap.py")
INIT_LIMIT_S = 10.0  # Lambda's limit for the init phase of an on-demand environment
REPORT_WAIT_S = 5.0  # how long an invocation waits for its REPORT line to be read (forwarding)


class FunctionError(Exception):
    """The function could not be set up or run (code folder, init, crash, timeout)."""


@dataclass(frozen=True)
class InvokeResult:
    request_id: str
    ok: bool
    payload: Any  # the handler's return value (ok) or Lambda's error document
    duration_ms: float
    cold: bool
    init_ms: float | None = None


@dataclass(frozen=True)
class LocalFunction:
    """One function of the template with its resolved environment."""

    name: str  # the logical id: what sam local calls it (AWS_LAMBDA_FUNCTION_NAME)
    handler: str
    runtime: str
    code_dir: Path
    timeout: int
    variables: tuple[str, ...]  # the names the template declares
    environment: dict[str, str]
    region: str
    # SnapStart on published versions: environments play a snapshot and a restore
    # (bootstrap.snapshot_and_restore), as Lambda resumes them.
    snapstart: bool = False

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:123456789012:function:{self.name}"


def load_function(
    template: Template, name: str | None, env_vars: Mapping[str, dict], warn=None
) -> LocalFunction:
    """The function and its environment resolved as ``sam local invoke`` does."""
    function = template.function(name)
    code_dir = template.code_dir(function)
    if not code_dir.is_dir():
        raise FunctionError(f"{function.name}: CodeUri {code_dir} is not a folder")
    if not str(function.runtime).startswith("python"):
        raise FunctionError(
            f"{function.name}: runtime {function.runtime!r}; only python runs without Docker"
        )
    declared = tuple((function.environment or {}).get("Variables") or {})
    ignored = sorted(
        set(env_vars.get("Parameters") or {}).union(env_vars.get(function.name) or {})
        - set(declared)
    )
    if ignored and warn:
        warn(
            f"env-vars file: ignoring {', '.join(ignored)}: not declared in the template for "
            f"{function.name} (sam local ignores them too)"
        )
    if warn and not any(os.environ.get(v) for v in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")):
        warn(
            "AWS_ENDPOINT_URL_S3 is not set, so the function will call the real S3; for the "
            "local one, run `make s3-local` and export the settings it prints"
        )
    return LocalFunction(
        function.name,
        str(function.handler),
        str(function.runtime),
        code_dir,
        int(function.timeout or 3),
        declared,
        template.environment(function, env_vars),
        template.region,
        _snapstart(template, function.name),
    )


def _snapstart(template: Template, name: str) -> bool:
    properties = (template.resources.get(name) or {}).get("Properties") or {}
    return (properties.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"


def new_trace_header() -> str:
    """An X-Ray trace header as API Gateway starts one (Root=1-<epoch hex>-<96 bits>)."""
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ExecutionEnvironment:
    """One process running the handler, one event at a time (see the module docstring)."""

    def __init__(
        self,
        function: LocalFunction,
        log: IO[bytes] | int,
        index: int = 1,
        owner: str = "local",
        forward: Callable[[bytes], None] | None = None,
    ):
        self.function = function
        self.index = index
        self._log = log
        self._forward = forward
        self._lock = threading.Lock()
        self._invocations = 0
        self._reported: set[str] = set()  # request ids whose REPORT line was read (forward)
        self._output_read = threading.Condition()
        self._pump: threading.Thread | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix=f"lambda-env-{index}-"))
        self.env = self._environment()
        parent, child = socket.socketpair()
        self._sock = parent
        try:
            self.process = subprocess.Popen(
                # the owner is only for `ps`: which server this environment belongs to
                [sys.executable, "-I", str(BOOTSTRAP), str(child.fileno()), f"{owner}#{index}"],
                env=self.env,
                cwd=function.code_dir,
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if forward else log,
                stderr=subprocess.STDOUT if forward else log,
                start_new_session=True,  # its own process group: Ctrl-C is the parent's job
            )
        except OSError:
            parent.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        finally:
            child.close()
        if forward:
            self._pump = threading.Thread(
                target=self._read_output, name=f"{owner}#{index}-output", daemon=True
            )
            self._pump.start()
        self.init_ms: float | None = None
        self._wait_ready(INIT_LIMIT_S + function.timeout)

    def _environment(self) -> dict[str, str]:
        function = self.function
        env = {
            # set by the Lambda runtime itself
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "_HANDLER": function.handler,
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            # the developer's ~/.aws files are not part of a Lambda sandbox
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            **function.environment,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4()}",
            "TMPDIR": str(self.tmp),
        }
        # what Lambda (and sam local: samcli/local/lambdafn/env_vars.py) sets: an environment
        # started for a request is on-demand; SnapStart's are snap-start
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start" if function.snapstart else "on-demand"
        for name in function.variables:  # Lambda's /tmp is private to the environment
            value = env.get(name, "")
            if value == "/tmp" or value.startswith("/tmp/"):
                env[name] = str(self.tmp) + value[len("/tmp") :]
        return env

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _wait_ready(self, limit: float) -> None:
        self._sock.settimeout(limit)
        try:
            message = recv_message(self._sock)
        except TimeoutError:
            self.close(kill=True)
            raise FunctionError(f"the handler's init took longer than {limit:.0f} s") from None
        except OSError:
            message = None
        if message is None or message.get("type") != "ready":
            self.close()
            raise FunctionError(
                "the execution environment exited during init (code "
                f"{self.process.returncode}); see the function's log"
            )
        self.init_ms = message["init_ms"]

    def _write_log(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        if isinstance(self._log, int):
            os.write(self._log, data)
        else:
            self._log.write(data)
            self._log.flush()

    def _read_output(self) -> None:
        """The output pipe's reader (with ``forward``): each line to the log, then to
        ``forward``; REPORT lines are noted so that an invocation can wait for its own."""
        flush = getattr(self._forward, "flush", None)
        for line in self.process.stdout:
            self._write_log(line)
            self._forward(line)
            if line.startswith(b"REPORT RequestId: "):  # the invocation's last line
                if flush:
                    flush()
                request_id = line.split()[2].decode(errors="replace")
                with self._output_read:
                    self._reported.add(request_id)
                    self._output_read.notify_all()
        if flush:
            flush()
        with self._output_read:
            self._reported.add("")  # end of output: nobody waits any longer
            self._output_read.notify_all()

    def _wait_for_report(self, request_id: str) -> None:
        if self._pump is None:
            return
        with self._output_read:
            self._output_read.wait_for(
                lambda: request_id in self._reported or "" in self._reported, REPORT_WAIT_S
            )
            self._reported.discard(request_id)

    def invoke(
        self, event: Any, request_id: str | None = None, trace_id: str | None = None
    ) -> InvokeResult:
        with self._lock:
            return self._invoke(event, request_id or str(uuid.uuid4()), trace_id)

    def _invoke(self, event: Any, request_id: str, trace_id: str | None) -> InvokeResult:
        timeout = self.function.timeout
        cold = self._invocations == 0
        self._invocations += 1
        started = time.perf_counter()
        try:
            send_message(
                self._sock,
                {
                    "type": "invoke",
                    "event": event,
                    "request_id": request_id,
                    "deadline_ms": int(time.time() * 1000) + timeout * 1000,
                    "invoked_function_arn": self.function.arn,
                    "trace_id": trace_id or new_trace_header(),
                },
            )
            # a little slack: the REPORT line and the answer follow the handler's return
            self._sock.settimeout(timeout + 0.5)
            message = recv_message(self._sock)
        except TimeoutError:
            message = "timeout"
        except OSError:  # the process is gone
            message = None
        init_ms = self.init_ms if cold else None
        if isinstance(message, dict):
            self._wait_for_report(request_id)
            payload = json.loads(message["payload"]) if message["ok"] else message["payload"]
            return InvokeResult(
                request_id, message["ok"], payload, message["duration_ms"], cold, init_ms
            )
        elapsed = time.perf_counter() - started
        self.close(kill=message == "timeout")
        if message == "timeout":
            elapsed = timeout  # what Lambda reports, whatever the slack above
            text = f"{_timestamp()} {request_id} Task timed out after {timeout:.2f} seconds"
            error_type = "Sandbox.Timedout"
        else:
            text = (
                f"RequestId: {request_id} Error: Runtime exited with error: "
                f"exit status {self.process.returncode}"
            )
            error_type = "Runtime.ExitError"
        self._write_log(
            f"{text}\nEND RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {elapsed * 1000:.2f} ms"
            f"\tStatus: {'timeout' if message == 'timeout' else 'error'}\n"
        )
        error = {"errorMessage": text, "errorType": error_type, "requestId": request_id}
        return InvokeResult(request_id, False, error, elapsed * 1000, cold, init_ms)

    def close(self, kill: bool = False) -> None:
        """End the environment: its process and its /tmp.

        The bootstrap returns when its socket closes; one that does not within 2 s (or at
        once with ``kill``) is killed with its process group, before it is reaped, so the
        group id cannot belong to anything else yet.
        """
        try:
            self._sock.close()
            if self.process.poll() is None:
                try:
                    self.process.wait(timeout=0 if kill else 2)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.process.wait(timeout=10)
        finally:
            if self._pump is not None:
                self._pump.join(timeout=5)  # the pipe ends with the process
            if self.process.stdout is not None:
                self.process.stdout.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


class FunctionFailed(FunctionError):
    """The handler raised, crashed or timed out: Lambda answered with its error document."""

    def __init__(self, result: InvokeResult):
        super().__init__(
            f"the function failed ({result.payload.get('errorType')}, Lambda request id "
            f"{result.request_id}); its log has the details"
        )
        self.result = result


class EnvironmentPool:
    """Up to ``size`` execution environments per function, started on demand, each serving
    one event at a time (a caller waits for a free one, as with reserved concurrency).

    The runner interface of SAM CLI's ``LocalApigwService`` (``invoke``, ``is_debugging``).
    """

    def __init__(
        self,
        functions: Mapping[str, LocalFunction],
        log: IO[bytes] | int,
        size: int,
        owner: str = "local",
        forward: Callable[[bytes], None] | None = None,
    ):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.functions = dict(functions)
        self.size = size
        self.owner = owner
        self.forward = forward  # each environment's output lines (ExecutionEnvironment)
        self._log = log
        self._lock = threading.Lock()
        self._numbers = iter(range(1, 1 << 30))
        self._capacity = {name: threading.BoundedSemaphore(size) for name in self.functions}
        self._idle: dict[str, list[ExecutionEnvironment]] = {n: [] for n in self.functions}
        self._all: set[ExecutionEnvironment] = set()
        self._closed = False

    def is_debugging(self) -> bool:
        return False

    def invoke(self, function_identifier: str, event: str, *, stdout, tenant_id=None, **_) -> None:
        """SAM's runner call: the function's answer, as JSON, to ``stdout``."""
        result = self.run(function_identifier, json.loads(event))
        if not result.ok:
            raise FunctionFailed(result)
        stdout.write_str(json.dumps(result.payload))

    def run(self, name: str, event: Any, request_id: str | None = None) -> InvokeResult:
        if name not in self.functions:
            raise FunctionError(f"no local function {name!r}")
        with self._capacity[name]:
            with self._lock:
                if self._closed:
                    raise FunctionError("the function is shutting down")
                idle = self._idle[name]
                env = idle.pop() if idle else None
            try:
                if env is None or not env.alive:
                    self._discard(env)
                    env = ExecutionEnvironment(
                        self.functions[name],
                        self._log,
                        next(self._numbers),
                        self.owner,
                        self.forward,
                    )
                    with self._lock:
                        self._all.add(env)
                return env.invoke(event, request_id)
            finally:
                with self._lock:
                    keep = env is not None and env.alive and not self._closed
                    if keep:
                        self._idle[name].append(env)
                if not keep:  # it timed out or crashed, or the pool closed meanwhile
                    self._discard(env)

    def _discard(self, env: ExecutionEnvironment | None) -> None:
        if env is not None:
            with self._lock:
                self._all.discard(env)
            env.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            environments = list(self._all)
        for env in environments:
            self._discard(env)
