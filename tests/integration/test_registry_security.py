"""Registry security against a real S3-protocol server on loopback (moto_server): Object Lock
on published versions, the audit record of every pointer change, SSE-KMS, signed versions.

What the pinned moto (5.2.5) does, checked here: it creates buckets with Object Lock (and
versioning), takes the lock on PutObject (ObjectLockMode/RetainUntilDate, shown by HeadObject),
refuses to delete a locked object version unless BypassGovernanceRetention is sent (governance
mode), answers ObjectLockConfigurationNotFoundError for a bucket without it and refuses a locked
PutObject there; its GetObjectRetention answers 500 (not used). As on AWS, a PUT without a
condition stacks a new version on a locked key: only the bucket policy's create-only rule
(test_template_security.py) and the publisher's If-None-Match stop that, and signatures make
such a replacement unservable.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from mlcore.registry import Pointer, Registry
from tests.conftest import ROOT
from tests.integration.test_publish_registry import artifact
from training.cli import main
from training.publish import publish
from training.registry_s3 import PublishError, read_audit, update_pointer

pytestmark = [
    pytest.mark.integration,
]

MODEL = "models/mnist/{version}/model.tflite"


@pytest.fixture
def locked_bucket(s3_env, s3):
    """A bucket as the stack (and make s3-local) creates it: versioned, with Object Lock."""
    bucket = f"{s3_env}-locked"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return bucket


def test_published_versions_are_locked_and_cannot_be_overwritten_or_deleted(
    s3, locked_bucket, tmp_path
):
    result = publish(artifact(tmp_path, 100), locked_bucket, "models", now=1_800_000_000)
    assert result["notes"] == []
    assert result["locked"] == "GOVERNANCE until 2028-01-15T08:00:00+00:00"  # + 365 days
    for name in ("model.tflite", "manifest.json"):
        head = s3.head_object(Bucket=locked_bucket, Key=f"models/mnist/100/{name}")
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert head["ObjectLockRetainUntilDate"].year == 2028
    key = MODEL.format(version=100)
    version_id = s3.head_object(Bucket=locked_bucket, Key=key)["VersionId"]
    # the publisher's own create-only write is refused...
    with pytest.raises(PublishError, match="already holds different bytes"):
        publish(artifact(tmp_path / "other", 100, b"other bytes"), locked_bucket, "models")
    # ...and the locked object version can be neither deleted nor replaced in place
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=locked_bucket, Key=key, VersionId=version_id)
    original = s3.get_object(Bucket=locked_bucket, Key=key, VersionId=version_id)["Body"].read()
    assert original == (tmp_path / "mnist" / "100" / "model.tflite").read_bytes()
    # the pointer is not locked: the next publish moves it by a conditional write
    assert "ObjectLockMode" not in s3.head_object(
        Bucket=locked_bucket, Key="models/mnist/latest.json"
    )
    moved = publish(artifact(tmp_path, 200), locked_bucket, "models", lock_mode="COMPLIANCE")
    assert (moved["served"], moved["revision"]) == (200, 2)
    head = s3.head_object(Bucket=locked_bucket, Key=MODEL.format(version=200))
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_a_bucket_without_object_lock_is_said_once_and_publishing_goes_on(s3, s3_env, tmp_path):
    result = publish(artifact(tmp_path, 100), s3_env, "models")
    (note,) = result["notes"]
    assert "not locked" in note and "no Object Lock" in note
    assert result["locked"] is None and result["served"] == 100
    assert "ObjectLockMode" not in s3.head_object(Bucket=s3_env, Key=MODEL.format(version=100))


def test_the_cli_prints_the_lock_or_why_there_is_none(s3_env, locked_bucket, tmp_path, capsys):
    folder = artifact(tmp_path, 100)
    assert main(["publish", "--artifact", str(folder), "--bucket", locked_bucket]) == 0
    out = capsys.readouterr()
    assert "locked    GOVERNANCE until" in out.out
    assert main(["publish", "--artifact", str(folder), "--bucket", s3_env]) == 0
    out = capsys.readouterr()
    assert out.err.count("not locked") == 1


def test_every_pointer_change_has_its_audit_record(s3, s3_env, tmp_path):
    publish(artifact(tmp_path, 100), s3_env, "models", now=1_800_000_000)
    publish(artifact(tmp_path, 200), s3_env, "models", now=1_800_000_100)
    publish(artifact(tmp_path, 150), s3_env, "models")  # older: the pointer stays, no record
    registry = Registry("models", "mnist")
    # a promote or rollback (issue 13) goes through the same conditional write
    update_pointer(
        s3, s3_env, registry, lambda p: p.moved_to(100, "2027-01-01T00:00:00Z"), action="rollback"
    )
    records = read_audit(s3, s3_env, registry)
    assert [(r["revision"], r["action"]) for r in records] == [
        (1, "publish"),
        (2, "publish"),
        (3, "rollback"),
    ]
    first, second, third = records
    assert first["from"] is None and first["to"]["version"] == 100
    assert (second["from"]["version"], second["to"]["version"]) == (100, 200)
    assert (third["from"]["version"], third["to"]["version"]) == (200, 100)
    assert second["at"] == "2027-01-15T08:01:40Z"
    assert all(r["who"] for r in records)
    assert read_audit(s3, s3_env, registry, last=1) == [third]
    # append-only: a record is never replaced, even by the publisher
    key = "models/mnist/audit/pointer/000000000001.json"
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket=s3_env, Key=key, Body=b"{}", IfNoneMatch="*")
    assert (
        Pointer.parse(
            s3.get_object(Bucket=s3_env, Key="models/mnist/latest.json")["Body"].read()
        ).revision
        == 3
    )


def test_audit_records_name_the_aws_principal_when_sts_answers(
    s3, s3_env, s3_server, tmp_path, monkeypatch
):
    from training import registry_s3

    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", s3_server)
    registry_s3.caller.cache_clear()
    try:
        publish(artifact(tmp_path, 100), s3_env, "models")
    finally:
        registry_s3.caller.cache_clear()
    (record,) = read_audit(s3, s3_env, Registry("models", "mnist"))
    assert record["who"].startswith("arn:aws:")  # moto's STS: the caller's ARN


def test_make_audit_prints_the_last_records(s3_env, tmp_path, capsys):
    publish(artifact(tmp_path, 100), s3_env, "models")
    publish(artifact(tmp_path, 200), s3_env, "models")
    assert main(["audit", "--bucket", s3_env, "--name", "mnist", "--last", "1"]) == 0
    out = capsys.readouterr().out
    assert "revision 2" in out and "100 -> 200" in out and "revision 1 " not in out


def test_sse_kms_with_the_given_key(s3, s3_env, s3_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", s3_server)
    key = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setenv("MODEL_KMS_KEY_ARN", key)
    publish(artifact(tmp_path, 100), s3_env, "models")
    for name in ("models/mnist/100/model.tflite", "models/mnist/latest.json"):
        head = s3.head_object(Bucket=s3_env, Key=name)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key


@pytest.fixture
def signing_key(s3_server, monkeypatch):
    """An ECC_NIST_P256 key of moto_server's KMS (the endpoint make s3-local serves too)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", s3_server)
    kms = boto3.client("kms")
    arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    public = base64.b64encode(kms.get_public_key(KeyId=arn)["PublicKey"]).decode()
    return arn, public


def test_a_signed_version_carries_a_bundle_of_its_files(s3, s3_env, signing_key, tmp_path):
    import hashlib

    from mlcore.model_signature import read_statement
    from mlcore.signing import load_public_key

    arn, public = signing_key
    folder = artifact(tmp_path, 100)
    result = publish(folder, s3_env, "models", signing_key=arn)
    assert result["signed"] == arn
    stored = {
        name: s3.get_object(Bucket=s3_env, Key=f"models/mnist/100/{name}")["Body"].read()
        for name in ("model.tflite", "manifest.json", "model.sig")
    }
    signed = read_statement(stored["model.sig"], (load_public_key(public),))
    assert signed == {
        name: hashlib.sha256(stored[name]).hexdigest() for name in ("model.tflite", "manifest.json")
    }
    # resumable: a publish cut short after the bundle keeps it (ECDSA signs anew each time)
    again = publish(folder, s3_env, "models", signing_key=arn)
    assert "model.sig" in again["resumed"]


def docs_commands() -> list[str]:
    """The bash block of docs/security.md that verifies a version with model_signing."""
    import re

    page = (ROOT / "docs" / "security.md").read_text()
    (block,) = [
        b for b in re.findall(r"```bash\n(.*?)```", page, re.S) if "model_signing verify" in b
    ]
    return block.strip().splitlines()


def run_docs_command(line: str, cwd, **values: str):
    """One line of the docs' block, its placeholders replaced, run by bash with this
    environment's tools first on PATH (model_signing)."""
    import os
    import subprocess
    import sys

    for placeholder, value in values.items():
        line = line.replace(placeholder, value)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": path},
    )


def test_model_signing_verify_passes_on_a_plain_download_and_refuses_each_tampering(
    s3, s3_env, s3_server, signing_key, tmp_path, monkeypatch, capsys
):
    """The docs' model_signing verify command, as written, on a plain download of a version
    published with KMS; then a tampered model, a tampered
    manifest, a bundle from another key and a bundle over another version: each refused by
    model_signing verify and by the real handler (the last good version keeps serving)."""
    import shutil

    from tests.function_support import function_configured, invoke, log_records
    from training.kms_signer import sign_version

    arn, public = signing_key
    publish(artifact(tmp_path / "a", 100), s3_env, "models", signing_key=arn)
    publish(artifact(tmp_path / "b", 101), s3_env, "models", signing_key=arn)
    work = tmp_path / "verify"
    (work / "100").mkdir(parents=True)
    # what the docs' `aws s3 cp --recursive` and `aws kms get-public-key | openssl` lines do
    # (the aws CLI is not part of this project's environment): every object under the
    # version's prefix as it is, and the public key as PEM
    listed = s3.list_objects_v2(Bucket=s3_env, Prefix="models/mnist/100/")["Contents"]
    for item in listed:
        body = s3.get_object(Bucket=s3_env, Key=item["Key"])["Body"].read()
        (work / "100" / item["Key"].rsplit("/", 1)[1]).write_bytes(body)
    der = base64.b64decode(public)
    (work / "signing-key.pem").write_bytes(
        serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    commands = docs_commands()
    assert [c.split()[0] for c in commands] == ["aws", "aws", "openssl", "model_signing"]
    assert "signing-key.pem" in commands[2] and "signing-key.pem" in commands[3]
    values = {"BUCKET": s3_env, "PREFIX": "models", "NAME": "mnist", "KEY_ARN": arn}
    done = run_docs_command(commands[-1], work, VERSION="100", **values)
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout
    assert sorted(p.name for p in (work / "100").iterdir()) == [
        "manifest.json",
        "model.sig",
        "model.tflite",
    ]

    def verify(folder: str):
        return run_docs_command(commands[-1], work, VERSION=folder, **values)

    kms = boto3.client("kms")
    other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    event = json.loads((ROOT / "events" / "predict-instances.json").read_text())
    base = "models/mnist/100"
    originals = {
        name: s3.get_object(Bucket=s3_env, Key=f"{base}/{name}")["Body"].read()
        for name in ("model.tflite", "manifest.json", "model.sig")
    }
    flipped = bytearray(originals["model.tflite"])
    flipped[len(flipped) // 2] ^= 0xFF
    cases = {
        "tampered model": {"model.tflite": bytes(flipped)},
        "tampered manifest": {"manifest.json": originals["manifest.json"].replace(b"}", b" }", 1)},
        "another key": {
            "model.sig": sign_version(
                kms, other, {n: originals[n] for n in ("model.tflite", "manifest.json")}, "100"
            )
        },
        "another version": {
            "model.sig": s3.get_object(Bucket=s3_env, Key="models/mnist/101/model.sig")[
                "Body"
            ].read()
        },
    }
    for case, changes in cases.items():
        # the standard tool, on a plain copy of the folder with the change
        folder = work / case.replace(" ", "-")
        shutil.copytree(work / "100", folder)
        for name, content in changes.items():
            (folder / name).write_bytes(content)
        refused = verify(folder.name)
        assert refused.returncode == 1 and "Verification failed" in refused.stderr, case
        # the function, on the registry with the change (version 100 served first)
        for name, content in changes.items():
            s3.put_object(Bucket=s3_env, Key=f"{base}/{name}", Body=content)
        capsys.readouterr()
        with function_configured(
            monkeypatch,
            tmp_path / "cache" / folder.name,
            BucketName=s3_env,
            ModelVersion="100",
            ManifestPublicKey=public,
        ):
            result = invoke(event)
            assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE"), case
        reasons = " ".join(str(r) for r in log_records(capsys.readouterr().out))
        assert ("sha256" if case == "tampered model" else "model.sig is refused") in reasons, case
        for name in changes:
            s3.put_object(Bucket=s3_env, Key=f"{base}/{name}", Body=originals[name])
    with function_configured(
        monkeypatch,
        tmp_path / "cache" / "restored",
        BucketName=s3_env,
        ModelVersion="100",
        ManifestPublicKey=public,
    ):
        assert invoke(event).status == 200


def test_with_signing_on_a_model_replaced_with_its_manifest_is_never_served(
    s3, s3_env, signing_key, tmp_path, monkeypatch, capsys
):
    """The whole path: make publish signs with (moto's) KMS; the real handler, configured as
    the template configures it with ManifestPublicKey, serves that version; someone who can
    write to the bucket but has no key replaces the model together with a recomputed manifest
    (and keeps the old signature, or drops it): the handler refuses it (503, ModelLoadFailures
    with the reason), before and after a cold start."""
    from tests.function_support import (
        function_configured,
        invoke,
        log_records,
        metric_values,
        new_version,
        reset_powertools,
    )

    reset_powertools(monkeypatch)
    arn, public = signing_key
    folder = artifact(tmp_path, 100)
    publish(folder, s3_env, "models", signing_key=arn)
    event = json.loads((ROOT / "events" / "predict-instances.json").read_text())
    with function_configured(
        monkeypatch, tmp_path / "cache", BucketName=s3_env, ManifestPublicKey=public
    ):
        result = invoke(event)
        assert result.status == 200 and result.body["model"]["version"] == 100

    model = bytearray((folder / "model.tflite").read_bytes())
    model[len(model) // 2] ^= 0xFF
    forged = new_version(json.loads((folder / "manifest.json").read_text()), 100, bytes(model))
    base = "models/mnist/100"
    s3.put_object(Bucket=s3_env, Key=f"{base}/model.tflite", Body=bytes(model))
    s3.put_object(Bucket=s3_env, Key=f"{base}/manifest.json", Body=json.dumps(forged).encode())
    capsys.readouterr()
    for signature in ("kept", "dropped"):
        if signature == "dropped":
            s3.delete_object(Bucket=s3_env, Key=f"{base}/model.sig")
        with function_configured(
            monkeypatch, tmp_path / signature, BucketName=s3_env, ManifestPublicKey=public
        ):
            result = invoke(event)
            assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE")
            assert "refused" in result.body["error"]
        out = capsys.readouterr().out
        assert metric_values(out, "ModelLoadFailures", role="stable") == [1.0]
        reasons = " ".join(str(r) for r in log_records(out))
        assert ("signs another manifest.json" if signature == "kept" else "missing") in reasons
