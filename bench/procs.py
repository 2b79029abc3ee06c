"""The parent's side of bench/child.py: one execution environment of one variant per process,
answering on a private socket with the local runner's framing (its stdout is the function's
log: discarded; its stderr goes to a log file)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from bench.common import PYTHON, ROOT
from local.bootstrap import recv_message, send_message


class Child:
    def __init__(
        self,
        variant: str,
        mode: str,
        config_path: Path,
        env: dict[str, str],
        log_path: Path,
        python: list[str] | None = None,
    ):
        self.variant, self.log_path = variant, log_path
        self._sock, theirs = socket.socketpair()
        script = str(ROOT / "bench" / "child.py")
        command = [*(python or [PYTHON]), script, variant, str(theirs.fileno()), str(config_path)]
        self.started_ns = time.monotonic_ns()
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, mode],
                pass_fds=(theirs.fileno(),),
                env=env,
                cwd=str(ROOT),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        theirs.close()

    def read(self, timeout: float = 300) -> tuple[dict, int]:
        """The next reply and the CLOCK_MONOTONIC ns at which it arrived."""
        self._sock.settimeout(timeout)
        try:
            reply = recv_message(self._sock)
        except TimeoutError:
            raise TimeoutError(
                f"{self.variant}: no answer in {timeout} s; see {self.log_path}"
            ) from None
        if reply is None:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{self.variant} exited without answering: {' | '.join(lines)}")
        return reply, time.monotonic_ns()

    def request(self, message: dict, timeout: float = 600) -> dict:
        send_message(self._sock, message)
        return self.read(timeout)[0]

    def close(self, wait: bool = True) -> None:
        self._sock.close()  # the child sees the end of its commands and returns
        if not wait:
            return
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
