"""training.kms_signer: the publisher's OpenSSF Model Signing bundle, signed by (moto's) KMS, is
accepted by model_signing's own verifier, and is made to real KMS's contract (MessageType RAW
within 4,096 bytes, ECDSA_SHA_256, an ECC_NIST_P256 key), not to moto's leniency."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlcore.model_signature import BUNDLE_FILE, KMS_RAW_MAX_BYTES, read_statement
from mlcore.signing import load_public_key
from training.kms_signer import SigningError, sign_version

FILES = {"model.tflite": b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4, "manifest.json": b"{}\n"}


class RecordingKms:
    """moto's KMS client, with every Sign call's arguments kept."""

    def __init__(self, kms):
        self.kms, self.signed = kms, []

    def sign(self, **arguments):
        self.signed.append(arguments)
        return self.kms.sign(**arguments)

    def __getattr__(self, name):
        return getattr(self.kms, name)


@pytest.fixture
def kms():
    with mock_aws():
        yield RecordingKms(boto3.client("kms", region_name="us-east-1"))


def new_key(kms, spec: str = "ECC_NIST_P256") -> str:
    return kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]


def pem(kms, arn: str, path: Path) -> Path:
    body = base64.b64encode(kms.get_public_key(KeyId=arn)["PublicKey"]).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    path.write_text(
        "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----", ""])
    )
    return path


def folder(tmp_path: Path, files: dict[str, bytes], bundle: bytes, name: str = "7") -> Path:
    version = tmp_path / name
    version.mkdir()
    for filename, content in files.items():
        (version / filename).write_bytes(content)
    (version / BUNDLE_FILE).write_bytes(bundle)
    return version


def library_verify(version: Path, public_key: Path) -> None:
    """model_signing's own verification of a folder, as `model_signing verify key` runs it."""
    import model_signing

    model_signing.verifying.Config().use_elliptic_key_verifier(
        public_key=public_key
    ).set_hashing_config(
        model_signing.hashing.Config().set_ignored_paths(paths=[BUNDLE_FILE])
    ).verify(version, version / BUNDLE_FILE)


def test_model_signings_verifier_accepts_the_kms_bundle(kms, tmp_path):
    arn = new_key(kms)
    bundle = sign_version(kms, arn, FILES, "7")
    version = folder(tmp_path, FILES, bundle)
    library_verify(version, pem(kms, arn, tmp_path / "key.pem"))
    key = load_public_key(base64.b64encode(kms.get_public_key(KeyId=arn)["PublicKey"]).decode())
    assert read_statement(bundle, (key,)) == {
        name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()
    }
    statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    assert statement["subject"][0]["name"] == "7"
    assert BUNDLE_FILE in statement["predicate"]["serialization"]["ignore_paths"]


def test_and_refuses_it_for_changed_files_or_another_key(kms, tmp_path):
    arn, other = new_key(kms), new_key(kms)
    version = folder(tmp_path, FILES, sign_version(kms, arn, FILES, "7"))
    (version / "manifest.json").write_bytes(b"{ }\n")
    with pytest.raises(ValueError, match="manifest.json"):
        library_verify(version, pem(kms, arn, tmp_path / "key.pem"))
    (version / "manifest.json").write_bytes(FILES["manifest.json"])
    with pytest.raises(ValueError, match="Key mismatch"):
        library_verify(version, pem(kms, other, tmp_path / "other.pem"))


def test_only_raw_messages_within_kms_limit_are_sent(kms):
    """Real KMS signs at most 4,096 bytes RAW and does not hash a DIGEST again (moto does
    both): every call is RAW, ECDSA_SHA_256, at most 4,096 bytes, and a longer statement is
    refused before KMS is asked."""
    arn = new_key(kms)
    sign_version(kms, arn, FILES, "7")
    ((call,),) = [kms.signed]
    assert (call["MessageType"], call["SigningAlgorithm"]) == ("RAW", "ECDSA_SHA_256")
    assert len(call["Message"]) <= KMS_RAW_MAX_BYTES
    assert call["Message"].startswith(b"DSSEv1 28 application/vnd.in-toto+json ")
    many = {f"shard-{i:03d}.bin": bytes([i]) for i in range(40)} | FILES
    with pytest.raises(SigningError, match="at most 4,096 bytes"):
        sign_version(kms, arn, many, "7")
    assert len(kms.signed) == 1  # nothing more was sent


def test_an_rsa_key_is_refused_with_what_to_do(kms):
    arn = new_key(kms, "RSA_2048")
    with pytest.raises(SigningError, match="RSA_2048 key: OpenSSF .* ECC_NIST_P256"):
        sign_version(kms, arn, FILES, "7")
    assert kms.signed == []


def test_a_signature_that_does_not_verify_is_never_written(kms):
    """A KMS that signs something else (moto with MessageType DIGEST signs the SHA-256 of the
    digest): caught by the publisher's own check."""
    arn = new_key(kms)

    class HashesAgain(RecordingKms):
        def sign(self, **arguments):
            arguments["Message"] = hashlib.sha256(arguments["Message"]).digest()
            return self.kms.sign(**arguments)

    with pytest.raises(SigningError, match="does not verify with its public key"):
        sign_version(HashesAgain(kms.kms), arn, FILES, "7")


def test_a_resumed_publish_keeps_the_bundle_it_stored(kms):
    arn = new_key(kms)
    stored = sign_version(kms, arn, FILES, "7")
    assert sign_version(kms, arn, FILES, "7", stored) == stored
    assert len(kms.signed) == 1
    changed = {**FILES, "manifest.json": b"[]\n"}
    assert sign_version(kms, arn, changed, "7", stored) != stored  # not these files: signed anew
    assert sign_version(kms, new_key(kms), FILES, "7", stored) != stored  # another key
    assert sign_version(kms, arn, FILES, "7", b"junk") != b"junk"
