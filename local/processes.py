"""Child processes that are always stopped: each in its own process group (so a terminal's
Ctrl-C reaches only the parent, which then stops them in order), stopped with SIGTERM to
the group, then SIGKILL after a grace period, before being reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(
    command: Sequence[str],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``command`` in a new session; its stdout and stderr go to ``log`` (appended),
    or are inherited when ``log`` is None."""
    output = open(log, "ab") if log else None  # noqa: SIM115 - the child holds it
    try:
        return subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
    finally:
        if output:
            output.close()


def stop(process: subprocess.Popen, grace: float = 10.0) -> int | None:
    """SIGTERM to the process group, SIGKILL after ``grace`` seconds; returns the exit code.

    The group is signalled only while its leader is not yet reaped, so the id cannot have
    been reused by then.
    """
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
    return process.returncode


def bind_error(port: int) -> str | None:
    """Why 127.0.0.1:port cannot be listened on (busy, not allowed), or None if it can."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def port_free(port: int) -> bool:
    return bind_error(port) is None


def wait_until(
    check,
    timeout: float,
    process: subprocess.Popen | None = None,
    what: str = "the server",
    interval: float = 0.1,
):
    """Call ``check()`` until it returns something truthy; TimeoutError or RuntimeError
    (the process exited) otherwise. Exceptions of ``check`` count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not ready yet: connection refused, 503, ...
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(
        f"{what} not ready after {timeout:.0f} s"
        + (f" (last error: {last_error})" if last_error else "")
    )


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:port (RuntimeError if the process
    exits first, TimeoutError after timeout seconds)."""

    def accepts() -> bool:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True

    wait_until(accepts, timeout, process, what=f"the server on port {port}", interval=0.05)


@contextlib.contextmanager
def local_api(
    *options: str,
    port: int,
    state_dir: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 90,
) -> Iterator[subprocess.Popen]:
    """``python -m local.api --port PORT --state-dir STATE_DIR OPTIONS...``, yielded once
    ``GET /health`` gets any HTTP answer over HTTPS (its certificate: STATE_DIR/ca.pem: the
    server is up, whatever the model's state); stopped on exit, whatever happens (its exit code
    is then the process's ``returncode``)."""
    import requests

    command = [sys.executable, "-m", "local.api", "--port", str(port)]
    process = start([*command, "--state-dir", str(state_dir), *options], log=log, env=env, cwd=ROOT)
    try:
        url, ca = f"https://127.0.0.1:{port}/health", str(state_dir / "ca.pem")
        answers = lambda: requests.get(url, verify=ca, timeout=5).status_code  # noqa: E731
        wait_until(answers, timeout, process, "local.api")
        yield process
    finally:
        stop(process)
