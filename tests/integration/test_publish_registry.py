"""The publisher against a real S3-protocol server on loopback (moto_server): conditional pointer
writes with revisions, two publishers racing, idempotent and resumable publishing (a publish
killed midway, then run again), a corrupt pointer and its repair, a silent S3, progress."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_DIR, ROOT
from tests.faults import FaultyS3
from training.cli import main
from training.publish import PublishError, publish

pytestmark = pytest.mark.integration

BASE = json.loads((FIXTURE_DIR / "manifest.json").read_text())
POINTER = "models/mnist/latest.json"


def artifact(root: Path, version: int, model: bytes | None = None) -> Path:
    """The fixture model as an artifact of `version` (other bytes if given)."""
    folder = root / "mnist" / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else (FIXTURE_DIR / "model.tflite").read_bytes()
    (folder / "model.tflite").write_bytes(model)
    manifest = {**BASE, "version": version}
    manifest["files"] = {
        **BASE["files"],
        "model.tflite": {"sha256": hashlib.sha256(model).hexdigest(), "size": len(model)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def pointer(s3, bucket) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=POINTER)["Body"].read())


def keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_each_publish_is_the_next_revision_and_only_raises_the_version(s3, s3_env, tmp_path):
    assert publish(artifact(tmp_path, 100), s3_env, "models")["revision"] == 1
    result = publish(artifact(tmp_path, 200), s3_env, "models")
    assert (result["served"], result["revision"]) == (200, 2)
    older = publish(artifact(tmp_path, 150), s3_env, "models")
    assert older["pointer"] is None and older["served"] == 200
    document = pointer(s3, s3_env)
    assert (document["version"], document["revision"]) == (200, 2)
    assert document["manifest_key"] == "models/mnist/200/manifest.json"
    assert "models/mnist/150/model.tflite" in keys(s3, s3_env)  # stored, not served


def test_fields_a_newer_writer_added_survive_a_publish(s3, s3_env, tmp_path):
    publish(artifact(tmp_path, 100), s3_env, "models")
    document = {**pointer(s3, s3_env), "canary": {"version": 101, "share": 10}}
    s3.put_object(Bucket=s3_env, Key=POINTER, Body=json.dumps(document).encode())
    publish(artifact(tmp_path, 300), s3_env, "models")
    assert pointer(s3, s3_env)["canary"] == {"version": 101, "share": 10}


class DelayedPointerWrites:
    """An S3 client whose pointer writes wait for `go` (after telling `reached`): two
    publishers can be made to read the same pointer and then write in a chosen order."""

    def __init__(self, client):
        self._client = client
        self.reached = threading.Event()
        self.go = threading.Event()

    def put_object(self, **kwargs):
        if kwargs["Key"] == POINTER:
            self.reached.set()
            assert self.go.wait(30)
        return self._client.put_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.mark.parametrize("first", ["newer", "older"])
def test_two_publishers_racing_never_move_the_pointer_back(s3, s3_env, tmp_path, first):
    """Both read the same pointer (none yet); one writes first. Unconditional writes let the
    last writer win (the older version if it came last); conditional writes make the loser
    read again and decide again."""
    import boto3

    newer, older = artifact(tmp_path, 500), artifact(tmp_path, 400)
    clients = {"newer": DelayedPointerWrites(boto3.client("s3")), "older": None}
    clients["older"] = DelayedPointerWrites(boto3.client("s3"))
    results: dict[str, dict] = {}
    threads = {
        name: threading.Thread(
            target=lambda n=name, a=folder: results.setdefault(
                n, publish(a, s3_env, "models", s3=clients[n])
            )
        )
        for name, folder in (("newer", newer), ("older", older))
    }
    for thread in threads.values():
        thread.start()
    for client in clients.values():  # both have read "no pointer" and are about to write
        assert client.reached.wait(30)
    second = "older" if first == "newer" else "newer"
    clients[first].go.set()
    threads[first].join(30)
    clients[second].go.set()
    threads[second].join(30)
    assert set(results) == {"newer", "older"}
    document = pointer(s3, s3_env)
    assert document["version"] == 500
    # newer first: the older publisher's write is refused, it reads 500 and leaves it (rev 1);
    # older first: the newer one's write is refused, it reads 400 (rev 1) and moves it (rev 2)
    assert document["revision"] == (1 if first == "newer" else 2)
    assert results["older"]["served"] in (400, 500) and results["newer"]["served"] == 500


def test_republishing_the_same_bytes_completes_and_different_bytes_are_refused(
    s3, s3_env, tmp_path
):
    folder = artifact(tmp_path, 100)
    publish(folder, s3_env, "models")
    again = publish(folder, s3_env, "models")
    assert again["resumed"] == ["model.tflite", "manifest.json"] and again["pointer"] is None
    model = (FIXTURE_DIR / "model.tflite").read_bytes()
    changed = artifact(tmp_path / "other", 100, model[:-1] + bytes([model[-1] ^ 1]))
    with pytest.raises(PublishError, match="already holds different bytes.*never changes"):
        publish(changed, s3_env, "models")
    stored = s3.get_object(Bucket=s3_env, Key="models/mnist/100/model.tflite")["Body"].read()
    assert stored == model


def test_a_publish_killed_midway_is_completed_by_running_it_again(s3_server, s3, s3_env, tmp_path):
    """`python -m training publish` is killed (SIGKILL) as it starts writing the manifest: the
    model is stored, the version is not readable yet (no manifest, no pointer). The same
    command again completes it."""
    folder = artifact(tmp_path / "artifacts", 700)
    command = [sys.executable, "-m", "training", "publish", "--artifacts"]
    command += [str(tmp_path / "artifacts"), "--version", "700", "--bucket", s3_env]
    with FaultyS3(s3_server) as proxy:
        process = None

        def kill_at_the_manifest(method: str, path: str) -> None:
            if method == "PUT" and path.split("?")[0].endswith("/700/manifest.json"):
                os.killpg(process.pid, signal.SIGKILL)
                proxy.mode = "silent"  # the request dies with its process

        proxy.on_request = kill_at_the_manifest
        env = {**os.environ, "AWS_ENDPOINT_URL_S3": proxy.endpoint}
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE, text=True
        )
        process.wait(120)
    assert process.returncode == -signal.SIGKILL
    assert keys(s3, s3_env) == ["models/mnist/700/model.tflite"]  # half published

    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "model.tflite already stored with the same sha256" in finished.stdout
    assert "-> version 700 (revision 1)" in finished.stdout
    assert keys(s3, s3_env) == [
        "models/mnist/700/manifest.json",
        "models/mnist/700/model.tflite",
        "models/mnist/audit/pointer/000000000001.json",  # the pointer change's record
        POINTER,
    ]
    assert folder.is_dir()


def test_a_corrupt_pointer_stops_the_publish_before_any_upload_and_says_how_to_repair(
    s3, s3_env, tmp_path, capsys
):
    artifact(tmp_path, 800)
    s3.put_object(Bucket=s3_env, Key=POINTER, Body=b'{"version": "eight", "revision": 6')
    args = ["publish", "--artifacts", str(tmp_path), "--version", "800", "--bucket", s3_env]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "latest.json is not a valid pointer" in err and "nothing was uploaded" in err
    assert "make publish VERSION=800 REPAIR_POINTER=1" in err
    assert "Traceback" not in err
    assert keys(s3, s3_env) == [POINTER]

    assert main([*args, "--repair-pointer"]) == 0
    document = pointer(s3, s3_env)
    assert (document["version"], document["revision"]) == (800, 1)
    s3.put_object(Bucket=s3_env, Key=POINTER, Body=b'{"version": 0, "revision": 6}')
    assert main([*args, "--repair-pointer"]) == 0
    assert pointer(s3, s3_env)["revision"] == 7  # the revision it still showed goes on


def test_a_silent_s3_is_a_clear_error_within_the_client_timeouts(
    s3_server, s3_env, tmp_path, monkeypatch, capsys
):
    import training.registry_s3 as registry_s3

    artifact(tmp_path, 900)
    monkeypatch.setattr(registry_s3, "CONNECT_TIMEOUT", 1)
    monkeypatch.setattr(registry_s3, "READ_TIMEOUT", 1)
    with FaultyS3(s3_server, mode="silent") as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.endpoint)
        args = ["publish", "--artifacts", str(tmp_path), "--version", "900", "--bucket", s3_env]
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "did not answer within 1 s" in err and "resumes where it stopped" in err
    assert len(proxy.requests) == registry_s3.MAX_ATTEMPTS  # bounded retries, then the error


def test_the_publishers_client_is_bounded():
    from training.registry_s3 import s3_client

    config = s3_client().meta.config
    assert config.connect_timeout == 5 and config.read_timeout == 15
    assert config.retries["total_max_attempts"] == 2


def test_a_large_upload_shows_a_progress_bar(s3, s3_env, tmp_path, capsys):
    from training.registry_s3 import PROGRESS_MIN_BYTES

    large = (FIXTURE_DIR / "model.tflite").read_bytes() + b"\0" * PROGRESS_MIN_BYTES
    publish(artifact(tmp_path, 1000, large), s3_env, "models", progress=True)
    err = capsys.readouterr().err
    assert "model.tflite" in err and "100%" in err
    stored = s3.get_object(Bucket=s3_env, Key="models/mnist/1000/model.tflite")["Body"].read()
    assert stored == large
    shutil.rmtree(tmp_path / "mnist")
