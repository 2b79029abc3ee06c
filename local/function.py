"""The function, run locally the way Lambda runs it: in execution environments.

An execution environment is one process (``local/bootstrap.py``) that imports the handler
once and then serves one event at a time, with

- exactly the environment ``sam local`` would give it (``local.template``), plus what the
  Lambda runtime itself sets (``_HANDLER``, ``LAMBDA_TASK_ROOT``, ``AWS_EXECUTION_ENV``,
  ``TZ``, ...), and nothing else of the caller's shell;
- its own ``/tmp``: a private folder (``TMPDIR``, and any variable whose value is under
  ``/tmp``, like ``MODEL_CACHE_DIR=/tmp/models``, is pointed into it), removed with the
  environment, as Lambda discards ``/tmp`` with the sandbox;
- the function's ``Timeout`` enforced: past it, the environment is killed and the
  invocation fails with Lambda's "Task timed out" error;
- stdout and stderr (the function's logs, EMF metric lines, START/END/REPORT) going to
  one log: a file, or the caller's stderr.

``EnvironmentPool`` is what Lambda's scaling looks like from one machine: up to N
environments, each created on demand at the first request that finds all others busy,
kept warm and reused (most recently used first), never serving two events at once.
"""

from __future__ import annotations

import asyncio
import itertools
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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from local import template as tpl
from local.apigw import new_trace_header
from local.bootstrap import recv_message, send_message

BOOTSTRAP = Path(__file__).resolve().with_name("bootstrap.py")
INIT_LIMIT_S = 10.0  # Lambda's limit for the init phase of an on-demand environment


class FunctionError(Exception):
    """The local function could not be set up (template, env-vars file, code folder)."""


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

    spec: tpl.FunctionSpec
    environment: dict[str, str]
    region: str

    @property
    def arn(self) -> str:
        return (
            f"arn:aws:lambda:{self.region}:{tpl.ACCOUNT_ID}:function:"
            f"{self.spec.function_name or self.spec.name}"
        )


def load_function(
    template_path: Path | str = tpl.DEFAULT_TEMPLATE,
    function_id: str | None = None,
    env_vars_path: Path | str | None = tpl.DEFAULT_ENV_VARS,
    parameter_overrides: Mapping[str, str] | None = None,
    shell_env: Mapping[str, str] | None = None,
    warn=None,
) -> tuple[tpl.Template, LocalFunction]:
    """The template and the function, its environment resolved as `sam local` does."""
    shell_env = os.environ if shell_env is None else shell_env
    template = tpl.Template(template_path, parameter_overrides, tpl.aws_region(shell_env))
    spec = template.function(function_id)
    if not spec.code_uri.is_dir():
        raise FunctionError(f"{spec.logical_id}: CodeUri {spec.code_uri} is not a folder")
    if not spec.runtime.startswith("python"):
        raise FunctionError(
            f"{spec.logical_id}: runtime {spec.runtime!r}; only python functions run without Docker"
        )
    env_vars = tpl.load_env_vars(env_vars_path)
    ignored = tpl.ignored_overrides(spec, env_vars)
    if ignored and warn:
        warn(
            f"{env_vars_path}: ignoring {', '.join(ignored)}: not declared in the template's "
            f"Environment for {spec.logical_id} (sam local ignores them too)"
        )
    environment = tpl.resolve_environment(spec, env_vars, shell_env)
    if warn and not any(environment.get(name) for name in tpl.ENDPOINT_VARIABLES):
        warn(
            "AWS_ENDPOINT_URL_S3 is not set, so the function will call the real S3; for the "
            "local one, run `make s3-local` and export the settings it prints"
        )
    return template, LocalFunction(spec, environment, template.region)


def _log_stream_name() -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


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
        python: str = sys.executable,
    ):
        self.function = function
        self.index = index
        self._log = log
        self._lock = threading.Lock()
        self._invocations = 0
        self.tmp = Path(tempfile.mkdtemp(prefix=f"lambda-env-{index}-"))
        self.env = self._environment()
        parent, child = socket.socketpair()
        self._sock = parent
        try:
            self.process = subprocess.Popen(
                # the owner is only for `ps`: which server this environment belongs to
                [python, "-I", str(BOOTSTRAP), str(child.fileno()), f"{owner}#{index}"],
                env=self.env,
                cwd=function.spec.code_uri,
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )  # its own process group: Ctrl-C is the parent's job
        except OSError:
            parent.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        finally:
            child.close()
        self.init_ms: float | None = None
        self.init_error: dict | None = None
        self._wait_ready(INIT_LIMIT_S + function.spec.timeout)

    def _environment(self) -> dict[str, str]:
        spec = self.function.spec
        env = {
            # set by the Lambda runtime itself
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            # the developer's ~/.aws files are not part of a Lambda sandbox
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        env.update(self.function.environment)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = _log_stream_name()
        for name in spec.variables:  # Lambda's /tmp is private to the environment
            value = env.get(name, "")
            if value == "/tmp" or value.startswith("/tmp/"):
                env[name] = str(self.tmp) + value[len("/tmp") :]
        env["TMPDIR"] = str(self.tmp)
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
            raise FunctionError(
                f"the handler's init phase took longer than {limit:.0f} s"
            ) from None
        except OSError:
            message = None
        if message is None or message.get("type") != "ready":
            self.close()
            raise FunctionError(
                "the execution environment exited during init (code "
                f"{self.process.returncode}); see the function's log"
            )
        self.init_ms, self.init_error = message["init_ms"], message["init_error"]

    def _write_log(self, text: str) -> None:
        data = text.encode()
        if isinstance(self._log, int):
            os.write(self._log, data)
        else:
            self._log.write(data)
            self._log.flush()

    def invoke(
        self, event: Any, request_id: str | None = None, trace_id: str | None = None
    ) -> InvokeResult:
        with self._lock:
            return self._invoke(event, request_id or str(uuid.uuid4()), trace_id)

    def _invoke(self, event: Any, request_id: str, trace_id: str | None) -> InvokeResult:
        timeout = self.function.spec.timeout
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
        if message == "timeout" or message is None:
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
            return InvokeResult(
                request_id,
                False,
                {"errorMessage": text, "errorType": error_type, "requestId": request_id},
                elapsed * 1000,
                cold,
                self.init_ms if cold else None,
            )
        payload = message["payload"]
        if message["ok"]:
            payload = json.loads(payload)
        return InvokeResult(
            request_id,
            message["ok"],
            payload,
            message["duration_ms"],
            cold,
            self.init_ms if cold else None,
        )

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
            shutil.rmtree(self.tmp, ignore_errors=True)


class EnvironmentPool:
    """Up to ``size`` execution environments, created on demand, each serving one event at a
    time (the caller waits for a free one, as with Lambda's reserved concurrency)."""

    def __init__(
        self,
        function: LocalFunction,
        log: IO[bytes] | int,
        size: int,
        owner: str = "local",
        on_start=None,
    ):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.function = function
        self.size = size
        self.owner = owner
        self._log = log
        self._on_start = on_start
        self._numbers = itertools.count(1)
        self._slots: asyncio.LifoQueue | None = None
        self._environments: set[ExecutionEnvironment] = set()
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="lambda-env")
        self._closed = False

    def _start(self) -> ExecutionEnvironment:
        env = ExecutionEnvironment(self.function, self._log, next(self._numbers), self.owner)
        self._environments.add(env)
        if self._on_start:
            self._on_start(env)
        return env

    def _call(
        self, env: ExecutionEnvironment | None, event: Any, request_id: str, trace_id: str | None
    ) -> tuple[ExecutionEnvironment, InvokeResult]:
        if env is None or not env.alive:
            if env is not None:
                self._discard(env)
            env = self._start()
        return env, env.invoke(event, request_id, trace_id)

    def _discard(self, env: ExecutionEnvironment) -> None:
        self._environments.discard(env)
        env.close()

    async def invoke(
        self, event: Any, request_id: str, trace_id: str | None = None
    ) -> InvokeResult:
        if self._closed:
            raise FunctionError("the function is shutting down")
        if self._slots is None:  # made here, in the server's event loop
            self._slots = asyncio.LifoQueue()
            for _ in range(self.size):
                self._slots.put_nowait(None)
        env = await self._slots.get()
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._call, env, event, request_id, trace_id
        )
        slots = self._slots

        def release(done: asyncio.Future) -> None:
            # the slot comes back only when the environment is really free again
            used = env
            if not done.cancelled() and done.exception() is None:
                used = done.result()[0]
            slots.put_nowait(used if used is not None and used.alive else None)

        future.add_done_callback(release)
        _, result = await asyncio.shield(future)
        return result

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        for env in list(self._environments):
            self._discard(env)
