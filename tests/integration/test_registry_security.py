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

import boto3
import pytest
from botocore.exceptions import ClientError

from mlcore.registry import Pointer, Registry
from tests.conftest import ROOT
from tests.integration.test_publish_registry import artifact
from training.cli import main
from training.publish import publish
from training.registry_s3 import PublishError, read_audit, update_pointer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
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
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", s3_server)
    kms = boto3.client("kms")
    arn = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    public = base64.b64encode(kms.get_public_key(KeyId=arn)["PublicKey"]).decode()
    return arn, public


def test_a_signed_version_carries_a_signature_of_its_manifest(s3, s3_env, signing_key, tmp_path):
    import hashlib

    from mlcore.registry import signed_statement
    from mlcore.signing import load_public_key, verify

    arn, public = signing_key
    result = publish(artifact(tmp_path, 100), s3_env, "models", signing_key=arn)
    assert result["signed"] == arn
    manifest = s3.get_object(Bucket=s3_env, Key="models/mnist/100/manifest.json")["Body"].read()
    document = json.loads(
        s3.get_object(Bucket=s3_env, Key="models/mnist/100/signature.json")["Body"].read()
    )
    statement = signed_statement("mnist", 100, hashlib.sha256(manifest).hexdigest())
    assert json.loads(statement) == document["statement"]
    assert verify(load_public_key(public), statement, base64.b64decode(document["signature"]))
    # resumable: the same signature again (PKCS#1 v1.5 is deterministic)
    again = publish(artifact(tmp_path, 100), s3_env, "models", signing_key=arn)
    assert "signature.json" in again["resumed"]


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
            s3.delete_object(Bucket=s3_env, Key=f"{base}/signature.json")
        with function_configured(
            monkeypatch, tmp_path / signature, BucketName=s3_env, ManifestPublicKey=public
        ):
            result = invoke(event)
            assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE")
            assert "refused" in result.body["error"]
        out = capsys.readouterr().out
        assert metric_values(out, "ModelLoadFailures", role="stable") == [1.0]
        reasons = " ".join(str(r) for r in log_records(out))
        assert ("does not verify" if signature == "kept" else "is missing") in reasons
