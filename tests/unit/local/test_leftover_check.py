"""tests.local_support.no_leftovers: it finds what a test left running, even a grandchild
whose parent exited, and nothing that ran before the test (another checkout's processes,
whatever they carry in their arguments, are never this process's descendants)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.local_support import descendants, no_leftovers


def test_an_orphaned_grandchild_is_found():
    with pytest.raises(AssertionError, match="left running") as failure:
        with no_leftovers():
            out = subprocess.run(
                ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
    pid = int(out)
    try:
        assert str(pid) in str(failure.value)
        assert pid in {p for p, _ in descendants()}  # adopted by this process, not by init
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_processes_from_before_and_stopped_ones_do_not_count():
    earlier = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "local-invoke#1", "moto_server"],
        stdin=subprocess.PIPE,
    )
    try:
        with no_leftovers():
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        assert earlier.pid in {p for p, _ in descendants()}
    finally:
        earlier.stdin.close()
        earlier.wait(timeout=30)
