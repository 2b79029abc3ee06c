"""Helpers for the tests of local/: the local API as a real subprocess, the fixture model on
the loopback S3, and leftover checks that look only at this test process's own tree.

Shared machines run other checkouts' suites and demos at the same time, so a leftover check
never scans the machine for a command line: it compares this process's descendants before
and after. This process is made the "child subreaper" of what it starts (Linux prctl), so a
process whose parent exits without stopping it is re-parented here and stays visible.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from local import processes
from local.processes import free_port  # noqa: F401 - re-exported for the tests of local/
from local.s3 import DUMMY_CREDENTIALS, REGION

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"
PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Orphaned descendants of this process come back to it instead of to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def descendants(pid: int | None = None) -> set[tuple[int, str]]:
    """(pid, command line) of the live processes below ``pid`` (default: this process),
    found through /proc/PID/task/TID/children: this process tree only."""
    found: set[tuple[int, str]] = set()
    stack = [pid or os.getpid()]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                stack.append(child)
                try:
                    state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                if state != "Z":  # an exited child not yet reaped is not running
                    found.add((child, cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


@contextlib.contextmanager
def no_leftovers():
    """Fails if a process started inside the block is still running after it."""
    adopt_orphans()
    # read twice: the kernel's children lists may miss a child forked just before a read, and
    # such a process (started before the block) must not be blamed on it
    before = descendants() | descendants()
    yield
    left = descendants() - before
    assert not left, f"processes left running: {sorted(left)}"


def s3_environment(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL_S3": endpoint, **DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}


def publish_fixture(endpoint: str, folder: Path) -> dict:
    """The committed fixture model published to a new bucket on the loopback S3, with the
    training job's publisher; the parameters that point the template's function at it."""
    import boto3

    from training.publish import publish

    env = s3_environment(endpoint)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    version = json.loads((FIXTURE_DIR / "manifest.json").read_text())["version"]
    artifact = folder / "artifacts" / "mnist" / str(version)
    artifact.mkdir(parents=True)
    for name in ("model.tflite", "manifest.json"):
        shutil.copy(FIXTURE_DIR / name, artifact / name)
    with environ(env):
        boto3.client("s3").create_bucket(Bucket=bucket)
        publish(artifact, bucket, "models")
    return {"bucket": bucket, "prefix": "models", "name": "mnist", "env": {**os.environ, **env}}


def parameters(published: dict) -> list[str]:
    """The template's parameters that point the function at a published model."""
    return [
        f"BucketName={published['bucket']}",
        f"ModelPrefix={published['prefix']}",
        f"ModelName={published['name']}",
    ]


@contextlib.contextmanager
def environ(values: dict[str, str]):
    """os.environ with these values inside the block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class RunningApi:
    url: str
    ca: str
    key: str
    port: int
    state: Path
    log: Path

    def function_log(self) -> str:
        return (self.state / "function.log").read_text(errors="replace")


@contextlib.contextmanager
def local_api(
    folder: Path,
    published: dict,
    environments: int = 2,
    *extra: str,
    default_state=False,
    overrides: tuple[str, ...] = (),
):
    """``python -m local.api`` on a free port against the published model (bucket, prefix,
    name; the S3 settings in its "env", else in os.environ); stopped after, with a check that
    it stopped cleanly and left no process or port behind. default_state: its certificate in
    its own default place (.local/api-PORT/, as `make local-api`), removed after."""
    import requests

    from local.api import STATE_ROOT

    port, key = free_port(), "test-key-123"
    state, log = folder / "api", folder / "api.log"
    command = [sys.executable, "-m", "local.api", "--port", str(port), "--api-key", key]
    if default_state:
        state = STATE_ROOT / f"api-{port}"
    else:
        command += ["--state-dir", str(state)]
    command += ["--environments", str(environments), *extra]
    command += ["--parameter-overrides", *parameters(published), *overrides]
    with no_leftovers():
        env = published.get("env") or dict(os.environ)
        process = processes.start(command, log=log, env=env, cwd=ROOT)
        api = RunningApi(f"https://127.0.0.1:{port}", str(state / "ca.pem"), key, port, state, log)
        # Ready once the deep health (it loads the model) answers 200 with the key; with IAM
        # auth (unsigned here) once the open, shallow /health answers.
        iam = "ApiAuthMode=IAM" in overrides
        ready = f"{api.url}/health" if iam else f"{api.url}/health/deep"
        headers = {} if iam else {"x-api-key": key}
        try:
            processes.wait_until(
                lambda: requests.get(ready, headers=headers, verify=api.ca, timeout=5).ok,
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
        if default_state:
            shutil.rmtree(state, ignore_errors=True)
        assert code == 0, f"local.api exited with {code}:\n{log.read_text()[-2000:]}"
        assert processes.port_free(port), f"port {port} still in use"
