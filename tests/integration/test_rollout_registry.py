"""make publish CANARY=, promote, rollback, status: the training CLI against the loopback S3
(moto_server), each change a conditional write of the pointer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.local_support import FIXTURE_DIR, ROOT
from training.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def artifacts(tmp_path):
    """The fixture model as versions V1 and V1 + 1 (same bytes, manifests of their own)."""
    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    folders = {}
    for version in (manifest["version"], manifest["version"] + 1):
        folder = tmp_path / "mnist" / str(version)
        folder.mkdir(parents=True)
        shutil.copy(FIXTURE_DIR / "model.tflite", folder / "model.tflite")
        (folder / "manifest.json").write_text(json.dumps({**manifest, "version": version}))
        folders[version] = folder
    return folders


def pointer(s3, bucket):
    return json.loads(s3.get_object(Bucket=bucket, Key="models/mnist/latest.json")["Body"].read())


def cli(bucket, *args):
    return main([*args, "--bucket", bucket])


def test_canary_promote_rollback_and_status(s3_env, s3, artifacts, capsys):
    v1, v2 = sorted(artifacts)
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v1])) == 0
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v2]), "--canary", "10") == 0
    doc = pointer(s3, s3_env)
    assert doc["version"] == v1 and doc["canary"] == {"version": v2, "share": 10}
    capsys.readouterr()
    assert cli(s3_env, "status") == 0
    out = capsys.readouterr().out
    assert f"served   version {v1} (90% of requests)" in out
    assert f"canary   version {v2} (10% of requests)" in out
    # status ends with the audit records of the pointer's changes (who, when, from, to)
    assert f"publish   none -> {v1}  by " in out
    assert f"canary    {v1} -> {v1} + canary {v2} (10%)  by " in out

    assert cli(s3_env, "promote", "--version", str(v2)) == 0
    doc = pointer(s3, s3_env)
    assert doc["version"] == v2 and "canary" not in doc
    assert [h["version"] for h in doc["history"]] == [v1]

    assert cli(s3_env, "rollback") == 0  # no canary: the previous version again
    doc = pointer(s3, s3_env)
    assert doc["version"] == v1 and doc.get("history", []) == []
    capsys.readouterr()
    assert cli(s3_env, "rollback") == 1  # nothing left to undo
    assert "nothing to roll back" in capsys.readouterr().err
    assert pointer(s3, s3_env)["revision"] == doc["revision"]  # unchanged


def test_nothing_to_undo_exits_1_from_the_cli_and_2_from_make(s3_env, artifacts):
    """What scripts see: `python -m training rollback` tells nothing to undo (1) from an error
    (2); `make rollback` reports any failed command as 2 (GNU make's own status), so both say
    nothing to roll back on stderr, as docs/rollouts.md and `make help` say."""
    v1, _ = sorted(artifacts)
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v1])) == 0

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

    direct = run(sys.executable, "-m", "training", "rollback", "--bucket", s3_env)
    assert direct.returncode == 1 and "nothing to roll back" in direct.stderr
    error = run(sys.executable, "-m", "training", "rollback", "--bucket", f"{s3_env}-missing")
    assert error.returncode == 2 and "does not exist" in error.stderr
    made = run("make", "--no-print-directory", "rollback", f"BUCKET={s3_env}")
    assert made.returncode == 2 and "nothing to roll back" in made.stderr
    help_text = run("make", "--no-print-directory", "help").stdout
    assert "python -m training rollback exits 1" in " ".join(help_text.split())


def test_rollback_clears_a_running_canary_first(s3_env, s3, artifacts):
    v1, v2 = sorted(artifacts)
    cli(s3_env, "publish", "--artifact", str(artifacts[v1]))
    cli(s3_env, "publish", "--artifact", str(artifacts[v2]), "--canary", "25")
    assert cli(s3_env, "rollback") == 0
    doc = pointer(s3, s3_env)
    assert doc["version"] == v1 and "canary" not in doc


def test_a_canary_needs_a_served_version_and_a_share_from_1_to_99(s3_env, artifacts, capsys):
    v1, _ = sorted(artifacts)
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v1]), "--canary", "10") == 2
    assert "publish without CANARY first" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(s3_env, "publish", "--artifact", str(artifacts[v1]), "--canary", "100")


def test_promote_refuses_a_version_never_published(s3_env, artifacts, capsys):
    v1, _ = sorted(artifacts)
    cli(s3_env, "publish", "--artifact", str(artifacts[v1]))
    assert cli(s3_env, "promote", "--version", "999") == 2
    assert "publish version 999 first" in capsys.readouterr().err


def test_every_change_is_a_conditional_write(s3_env, s3, artifacts, monkeypatch):
    """A writer that lost the race reads again and decides again (If-Match on the ETag it
    read): a canary started between a promote's read and its write is not overwritten blindly,
    the promote is decided again on top of it."""
    from training import registry_s3

    v1, v2 = sorted(artifacts)
    cli(s3_env, "publish", "--artifact", str(artifacts[v1]))
    cli(s3_env, "publish", "--artifact", str(artifacts[v2]), "--canary", "5")
    cli(s3_env, "rollback")  # v2 stored, v1 served, revision 3
    real_put, raced = registry_s3.put, []

    def racing_put(s3_client, bucket, key, body, *args, **kwargs):
        if key.endswith("latest.json") and not raced:
            raced.append(True)  # another writer starts a canary between read and write
            real_put(
                s3_client,
                bucket,
                key,
                json.dumps(
                    {**pointer(s3, s3_env), "revision": 4, "canary": {"version": v2, "share": 5}}
                ).encode(),
                "application/json",
            )
        return real_put(s3_client, bucket, key, body, *args, **kwargs)

    monkeypatch.setattr(registry_s3, "put", racing_put)
    assert cli(s3_env, "promote", "--version", str(v2)) == 0
    doc = pointer(s3, s3_env)
    assert raced
    assert (doc["version"], doc["revision"], doc.get("canary")) == (v2, 5, None)
    assert [h["version"] for h in doc["history"]] == [v1]


def test_a_damaged_pointer_is_shown_refused_and_repaired_from_the_audit_trail(
    s3_env, s3, artifacts, capsys
):
    """Issue 25: every tool crashed on a pointer with 1e400 in it, and the repair wrote the bad
    field back as Infinity. Now status shows it, promote and rollback refuse it with the way
    out, and rollback REPAIR_POINTER=1 restores the last valid pointer of the audit trail."""
    v1, v2 = sorted(artifacts)
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v1])) == 0
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v2]), "--canary", "10") == 0
    good = pointer(s3, s3_env)
    key = "models/mnist/latest.json"
    s3.put_object(Bucket=s3_env, Key=key, Body=b'{"version": 1e400, "revision": 2}')
    capsys.readouterr()
    assert cli(s3_env, "status") == 0
    out = capsys.readouterr().out
    assert "$.version is 1e400: numbers must be finite" in out and "REPAIR_POINTER=1" in out
    assert cli(s3_env, "promote", "--version", str(v2)) == 2
    assert cli(s3_env, "rollback") == 2
    assert "is not a valid pointer" in capsys.readouterr().err
    assert cli(s3_env, "rollback", "--repair-pointer") == 0
    repaired = pointer(s3, s3_env)
    assert repaired["revision"] == good["revision"] + 1
    assert (repaired["version"], repaired["canary"]) == (good["version"], good["canary"])
    assert repaired.get("object_versions") == good.get("object_versions")
    capsys.readouterr()
    assert cli(s3_env, "audit") == 0
    assert "repair" in capsys.readouterr().out


def test_a_damaged_pointer_is_replaced_by_a_version_you_name(s3_env, s3, artifacts):
    v1, v2 = sorted(artifacts)
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v1])) == 0
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v2])) == 0
    before = pointer(s3, s3_env)
    s3.put_object(Bucket=s3_env, Key="models/mnist/latest.json", Body=b'{"version": NaN}')
    assert cli(s3_env, "promote", "--version", str(v1), "--repair-pointer") == 0
    after = pointer(s3, s3_env)
    assert (after["version"], after["revision"]) == (v1, before["revision"] + 1)


def test_an_invalid_manifest_is_never_published(s3_env, s3, artifacts, capsys):
    v1 = min(artifacts)
    manifest_file = artifacts[v1] / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["input"]["value_range"] = [255, 0]
    manifest_file.write_text(json.dumps(manifest))
    assert cli(s3_env, "publish", "--artifact", str(artifacts[v1])) == 2
    err = capsys.readouterr().err
    assert "$.input.value_range is [255, 0]: low must be < high" in err
    assert "nothing was uploaded" in err
    listed = s3.list_objects_v2(Bucket=s3_env, Prefix="models/mnist/")
    assert listed.get("KeyCount", 0) == 0
