"""Helpers for the tests of local/: the local API as a real subprocess, and leftover checks."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from local import processes
from local.processes import free_port  # noqa: F401 - re-exported for the tests of local/

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"


def processes_with(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def env_vars_file(folder: Path, published: dict) -> Path:
    """An env-vars file (sam's format) pointing the function at the published fixture."""
    path = folder / "env.json"
    path.write_text(
        json.dumps(
            {
                "InferenceFunction": {
                    "MODEL_BUCKET": published["bucket"],
                    "MODEL_PREFIX": published["prefix"],
                    "MODEL_NAME": published["name"],
                    "MODEL_VERSION": "latest",
                }
            }
        )
    )
    return path


@dataclass
class RunningApi:
    url: str
    ca: str
    key: str
    port: int
    process: subprocess.Popen
    state: Path
    log: Path

    def function_log(self) -> str:
        return (self.state / "function.log").read_text(errors="replace")


@contextlib.contextmanager
def local_api(folder: Path, published: dict, environments: int = 2, key: str = "test-key-123"):
    """``python -m local.api`` on a free port against the published model; stopped after,
    with a check that it stopped cleanly and left no process or port behind."""
    import requests

    port = free_port()
    state = folder / "api"
    log = folder / "api.log"
    process = processes.start(
        [
            sys.executable,
            "-m",
            "local.api",
            "--port",
            str(port),
            "--api-key",
            key,
            "--env-vars",
            str(env_vars_file(folder, published)),
            "--state-dir",
            str(state),
            "--environments",
            str(environments),
        ],
        log=log,
        env=dict(os.environ),
        cwd=ROOT,
    )
    api = RunningApi(
        f"https://127.0.0.1:{port}", str(state / "ca.pem"), key, port, process, state, log
    )
    try:
        processes.wait_until(
            lambda: requests.get(f"{api.url}/health", verify=api.ca, timeout=5).ok,
            60,
            process,
            "the local API",
        )
        yield api
    except Exception:
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        code = processes.stop(process)
        leftovers = processes_with(f"local-api:{port}")
        assert code == 0, f"local.api exited with {code}:\n{log.read_text()[-2000:]}"
        assert leftovers == [], f"execution environments left running: {leftovers}"
        assert processes.port_free(port), f"port {port} still in use"
