"""Child processes that answer on a private pipe (their stdout is the function's log: discarded)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

from bench.common import PYTHON, ROOT


class Child:
    """`python bench/SCRIPT VARIANT FD CONFIG`; replies are JSON lines on the pipe FD."""

    def __init__(
        self,
        script: str,
        variant: str,
        config_path: Path,
        env: dict[str, str],
        log_path: Path,
        stdin: bool = False,
        python: list[str] | None = None,
    ):
        self._read_fd, write_fd = os.pipe()
        self._buffer = b""
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.started_ns = time.monotonic_ns()
        self.process = subprocess.Popen(
            [
                *(python or [PYTHON]),
                str(ROOT / "bench" / script),
                variant,
                str(write_fd),
                str(config_path),
            ],
            pass_fds=(write_fd,),
            env=env,
            cwd=str(ROOT),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(write_fd)

    def read(self, timeout: float = 120) -> tuple[dict, int]:
        """The next reply and the CLOCK_MONOTONIC ns at which it was read."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer within {timeout} s; see {self.log_path}")
            ready, _, _ = select.select([self._read_fd], [], [], remaining)
            if ready:
                chunk = os.read(self._read_fd, 1 << 20)
                if not chunk:
                    self.process.wait(timeout=10)
                    raise RuntimeError(
                        f"child exited ({self.process.returncode}) without answering; "
                        f"see {self.log_path}: {tail(self.log_path)}"
                    )
                self._buffer += chunk
        received = time.monotonic_ns()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line), received

    def send(self, message: dict) -> None:
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def request(self, message: dict, timeout: float = 300) -> dict:
        self.send(message)
        reply, _ = self.read(timeout)
        if "error" in reply and reply.get("status") is None and "ns" not in reply:
            raise RuntimeError(f"worker error: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            if self.process.stdin and self.process.poll() is None:
                try:
                    self.send({"op": "quit"})
                    self.process.stdin.close()
                except (BrokenPipeError, OSError):
                    pass
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._read_fd)
            self._log.close()


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
