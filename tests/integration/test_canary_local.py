"""The model canary flow against the local stack, as a user runs it: the local API (two
execution environments) over the loopback S3, the training CLI in processes of its own.

publish v2 as a canary of 30% -> both versions answer, about 30% the canary -> promote v2 ->
every answer v2 (stable) -> rollback -> every answer v1 again. ModelRefreshSeconds=1, so each
pointer change reaches the warm environments within a second or so."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import requests

from tests.local_support import FIXTURE_DIR, ROOT, local_api, publish_fixture

pytestmark = pytest.mark.integration

SHARE = 30
MEASURED = 400


def training(published, *args):
    command = [sys.executable, "-m", "training", *args, "--bucket", published["bucket"]]
    done = subprocess.run(
        command, cwd=ROOT, env=published["env"], capture_output=True, text=True, timeout=120
    )
    return done


def predict(api, digits) -> dict:
    response = requests.post(
        f"{api.url}/predict",
        json={"instances": digits},
        headers={"x-api-key": api.key},
        verify=api.ca,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["model"]


def until(condition, what: str, limit: float = 60.0):
    """Poll (requests to the API) until `condition()` holds; fail naming `what` after `limit`."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        if condition():
            return
    pytest.fail(f"never saw {what}")


def test_canary_promote_rollback_through_the_local_api(s3_server, tmp_path):
    published = publish_fixture(s3_server, tmp_path)
    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    v1, v2 = manifest["version"], manifest["version"] + 1
    artifact = tmp_path / "v2"
    artifact.mkdir()
    shutil.copy(FIXTURE_DIR / "model.tflite", artifact / "model.tflite")
    (artifact / "manifest.json").write_text(json.dumps({**manifest, "version": v2}))
    digits = json.loads((ROOT / "examples" / "digit.json").read_text())["instances"]

    with local_api(tmp_path, published, 2, overrides=("ModelRefreshSeconds=1",)) as api:
        assert predict(api, digits) == {"name": "mnist", "version": v1, "role": "stable"}

        done = training(published, "publish", "--artifact", str(artifact), "--canary", str(SHARE))
        assert done.returncode == 0, done.stderr
        until(lambda: predict(api, digits)["role"] == "canary", "a canary answer")
        for _ in range(40):  # both environments hold the canary by now (or load it)
            predict(api, digits)
        answers = [predict(api, digits) for _ in range(MEASURED)]
        canary = [a for a in answers if a["role"] == "canary"]
        assert {a["version"] for a in canary} == {v2}
        assert {a["version"] for a in answers if a["role"] == "stable"} == {v1}
        share = len(canary) / MEASURED
        print(f"\ncanary share measured: {len(canary)}/{MEASURED} = {share:.3f} (set {SHARE}%)")
        # binomial, n=400, p=0.3: sd 0.023; 0.20..0.40 is more than 4 sd either side
        assert 0.20 <= share <= 0.40

        status = training(published, "status")
        assert f"canary   version {v2} ({SHARE}% of requests)" in status.stdout

        done = training(published, "promote", "--version", str(v2))
        assert done.returncode == 0, done.stderr
        until(
            lambda: predict(api, digits) == {"name": "mnist", "version": v2, "role": "stable"},
            "v2 served as stable",
        )
        after = [predict(api, digits) for _ in range(60)]
        print(f"after promote: {sum(a['version'] == v2 for a in after)}/60 answered by v{v2}")
        assert all(a["role"] == "stable" for a in after[-20:])

        done = training(published, "rollback")
        assert done.returncode == 0, done.stderr
        until(lambda: predict(api, digits)["version"] == v1, "v1 served again")
        back = [predict(api, digits) for _ in range(60)]
        print(f"after rollback: {sum(a['version'] == v1 for a in back)}/60 answered by v{v1}")
        assert all(a == {"name": "mnist", "version": v1, "role": "stable"} for a in back[-20:])

        done = training(published, "rollback")
        assert done.returncode == 1  # nothing left to undo
        assert "nothing to roll back" in done.stderr
