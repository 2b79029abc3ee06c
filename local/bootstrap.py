"""The inside of one local execution environment: a stand-in for Lambda's Python runtime.

Started by ``local.function.ExecutionEnvironment`` as ``python -I bootstrap.py FD OWNER`` with
exactly the function's environment (cwd = the code folder). Standard library only, so it
imports nothing of the project: the handler's module is found on the code folder, as
``/var/task`` is on Lambda. Like ``awslambdaric``'s bootstrap it

- imports the handler once (the init phase), timing it for the REPORT line;
- then runs one event at a time: writes ``START``/``END``/``REPORT`` lines around the
  handler call to stdout (which the parent points at the log), builds the Lambda context
  object, and answers the parent with the JSON result, or with the
  ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` document Lambda returns
  when a handler raises (the error is logged as ``[ERROR] Type: message`` plus the traceback).

Messages with the parent: 4-byte big-endian length + UTF-8 JSON, over a socketpair.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import struct
import sys
import time
import traceback
import uuid

HEADER = struct.Struct("!I")


def send_message(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    sock.sendall(HEADER.pack(len(data)) + data)


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket) -> dict | None:
    """The next message, or None when the other side has closed."""
    header = _recv_exactly(sock, HEADER.size)
    if header is None:
        return None
    body = _recv_exactly(sock, HEADER.unpack(header)[0])
    return None if body is None else json.loads(body)


class LambdaContext:
    """The context object of awslambdaric/lambda_context.py (the fields handlers read).

    The one context class of the project: the runner builds it per invocation; tests and
    benchmarks build it with no arguments (a new request id, a deadline the function's
    Timeout from now; the other fields from the AWS_LAMBDA_* variables, as in Lambda).
    """

    def __init__(
        self,
        request_id: str | None = None,
        deadline_ms: int | None = None,
        invoked_function_arn: str | None = None,
        *,
        function_name: str | None = None,
    ):
        env = os.environ
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.function_name = function_name or env.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")  # a str
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/local")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST")
        self.invoked_function_arn = invoked_function_arn or (
            f"arn:aws:lambda:{env.get('AWS_REGION', 'us-east-1')}:123456789012:function:"
            f"{self.function_name}"
        )
        self.client_context = None
        self.identity = None
        self.tenant_id = None
        timeout_ms = int(env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3")) * 1000
        self._deadline_ms = deadline_ms or int(time.time() * 1000) + timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


REQUEST_ID = _RequestIdFilter()


class _JsonFormatter(logging.Formatter):
    """Lambda's JSON log format for the root logger (LoggingConfig.LogFormat: JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", ""),
        }
        if record.exc_info:
            document["stackTrace"] = self.formatException(record.exc_info).splitlines()
        return json.dumps(document, default=str)


def setup_root_logger() -> None:
    """The Lambda Python runtime's root logger: its text or JSON format, its level."""
    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        handler.setFormatter(_JsonFormatter())
        level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    else:
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        level = "WARNING"
    handler.addFilter(REQUEST_ID)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"WARN": "WARNING", "TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(level, level))


def make_error(message: str, error_type: str, stack: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}


def error_from_exception(exc: BaseException) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in frames if f.filename != __file__]  # as awslambdaric drops bootstrap.py
    return make_error(str(exc), type(exc).__name__, traceback.format_list(frames))


def log_error(error: dict) -> None:
    """awslambdaric's text-format log_error (it joins the lines with '\\r' so that CloudWatch
    keeps one record; a terminal would overwrite them, so here they are lines)."""
    lines = [
        f"[ERROR] {error['errorType']}: {error['errorMessage']}",
        "Traceback (most recent call last):",
    ]
    for element in error.get("stackTrace") or []:
        lines.extend(element.splitlines())
    sys.stdout.write("\n".join(lines) + "\n")


def load_handler(spec: str):
    """'module.function' from the code folder; errors as the Lambda runtime names them."""
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise _InitError(
            make_error(
                f"Bad handler '{spec}': not enough values to unpack", "Runtime.MalformedHandlerName"
            )
        )
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _InitError(
            make_error(
                f"Unable to import module '{module_name}': {exc}", "Runtime.ImportModuleError"
            )
        ) from exc
    except SyntaxError as exc:
        raise _InitError(
            make_error(
                f"Syntax error in module '{module_name}': {exc}", "Runtime.UserCodeSyntaxError"
            )
        ) from exc
    except Exception as exc:  # an exception at import time fails the init phase
        raise _InitError(error_from_exception(exc)) from exc
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _InitError(
            make_error(
                f"Handler '{function_name}' missing on module '{module_name}'",
                "Runtime.HandlerNotFound",
            )
        ) from None


class _InitError(Exception):
    def __init__(self, error: dict):
        super().__init__(error["errorMessage"])
        self.error = error


def max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + 0.5)  # KiB on Linux


def report_line(request_id: str, duration_ms: float, init_ms: float | None) -> str:
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {int(-(-duration_ms // 1))} ms\tMemory Size: {memory} MB\t"
        f"Max Memory Used: {max_memory_mb()} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    return line


def _run_hooks(hooks: list, error_type: str) -> dict | None:
    for func, args, kwargs in hooks:
        try:
            func(*args, **kwargs)
        except Exception as exc:  # Lambda fails the publish (before) or the restore (after)
            error = error_from_exception(exc)
            error["errorType"] = error_type
            return error
    return None


def snapshot_and_restore() -> dict | None:
    """SnapStart, as far as one machine can play it: the before-snapshot hooks the handler's
    module registered (snapshot_restore_py, as the Python runtime provides it), then the
    after-restore hooks, in this process. Not a fork: a fork keeps the memory as a snapshot
    does but drops every other thread, and the S3 client's Rust runtime (obstore's tokio
    threads) does not survive that (the child crashes), while Lambda's snapshot freezes and
    resumes the threads. Returns the error document when a hook fails (the environment then
    fails every invocation)."""
    hooks = sys.modules.get("snapshot_restore_py")
    if hooks is None:  # the handler registered nothing
        return None
    error = _run_hooks(hooks.get_before_snapshot(), "Runtime.BeforeSnapshotError")
    if error is not None:
        log_error(error)
        return error
    started = time.perf_counter()
    print("RESTORE_START Runtime Version: local", flush=True)
    error = _run_hooks(hooks.get_after_restore(), "Runtime.AfterRestoreError")
    if error is not None:
        log_error(error)
    ms = (time.perf_counter() - started) * 1000
    print(f"RESTORE_REPORT Restore Duration: {ms:.2f} ms", flush=True)
    return error


def run(sock: socket.socket) -> None:
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path.insert(0, task_root)
    setup_root_logger()
    runtime = os.environ.get("AWS_EXECUTION_ENV", "python").removeprefix("AWS_Lambda_")
    print(
        f"INIT_START Runtime Version: {runtime}.local\tPython: {sys.version.split()[0]}", flush=True
    )
    started = time.perf_counter()
    try:
        handler, init_error = load_handler(os.environ["_HANDLER"]), None
    except _InitError as exc:
        handler, init_error = None, exc.error
        log_error(init_error)
    if init_error is None and os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        init_error = snapshot_and_restore()
    init_ms: float | None = (time.perf_counter() - started) * 1000
    sys.stdout.flush()
    send_message(sock, {"type": "ready", "init_ms": init_ms, "init_error": init_error})

    while True:
        message = recv_message(sock)
        if message is None:  # the parent went away: this environment is over
            return
        request_id = message.get("request_id") or str(uuid.uuid4())
        REQUEST_ID.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = message.get("trace_id", "")
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.perf_counter()
        ok, payload = True, None
        try:
            if init_error is not None:
                raise _InitError(init_error)
            context = LambdaContext(
                request_id, int(message["deadline_ms"]), message["invoked_function_arn"]
            )
            result = handler(message["event"], context)
            try:
                payload = json.dumps(result)
            except (TypeError, ValueError) as exc:
                raise _InitError(
                    make_error(f"Unable to marshal response: {exc}", "Runtime.MarshalError")
                ) from exc
        except _InitError as exc:
            ok, payload = False, dict(exc.error)
        except Exception as exc:  # what the handler raised goes back as Lambda's error document
            ok, payload = False, error_from_exception(exc)
        duration_ms = (time.perf_counter() - started) * 1000
        if not ok:
            payload["requestId"] = request_id
            log_error(payload)
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"END RequestId: {request_id}", flush=True)
        print(report_line(request_id, duration_ms, init_ms), flush=True)
        init_ms = None  # Init Duration: only on the first invocation of an environment
        send_message(
            sock,
            {
                "type": "result",
                "ok": ok,
                "payload": payload,
                "duration_ms": duration_ms,
                "max_memory_mb": max_memory_mb(),
            },
        )


def main() -> None:
    # one line per write, so that several environments can share one log file (O_APPEND)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        run(sock)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()


if __name__ == "__main__":
    main()
