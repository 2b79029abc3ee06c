"""mlcore.model_signature: the OpenSSF Model Signing bundle as the function reads it, without the
model_signing package (not in the function's environment).

Golden bytes: tests/fixtures/model_signing/1764979200/model.sig was written by `model_signing
sign key` 1.1.1 (the CLI, with the test key beside it) over that folder; every change to it, or
to the files it signs, must be refused. tests/unit/training/test_kms_signer.py checks the other
direction (model_signing's verifier accepts what the publisher writes).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlcore.model_signature import (
    BUNDLE_FILE,
    PAYLOAD_TYPE,
    check_bundle,
    key_hint,
    pae,
    read_statement,
)
from mlcore.signing import load_public_key
from tests.conftest import ROOT
from tests.model_signing_support import bundle_of
from tests.model_signing_support import statement_of as support_statement

FIXTURE = ROOT / "tests" / "fixtures" / "model_signing"
VERSION = FIXTURE / "1764979200"
GOLDEN_SHA256 = "9f8de1d1e24e51bea001a8b493d8d487bd20ac1d39936b78d14ad194f90d952c"


@pytest.fixture(scope="module")
def key():
    return load_public_key((FIXTURE / "test-signing-key.pub.pem").read_text())


@pytest.fixture(scope="module")
def private():
    return serialization.load_pem_private_key((FIXTURE / "test-signing-key.pem").read_bytes(), None)


def golden() -> bytes:
    bundle = (VERSION / BUNDLE_FILE).read_bytes()
    assert hashlib.sha256(bundle).hexdigest() == GOLDEN_SHA256  # the bytes model_signing wrote
    return bundle


def test_the_golden_bundle_verifies_and_lists_the_folder(key):
    files = read_statement(golden(), (key,))
    assert files == {
        name: hashlib.sha256((VERSION / name).read_bytes()).hexdigest()
        for name in ("manifest.json", "model.tflite")
    }
    check_bundle(golden(), (key,), (VERSION / "manifest.json").read_bytes())


def test_the_hint_is_model_signings_sha256_of_the_pem(key):
    assert (
        key_hint(key)
        == hashlib.sha256((FIXTURE / "test-signing-key.pub.pem").read_bytes()).hexdigest()
    )
    assert json.loads(golden())["verificationMaterial"]["publicKey"]["hint"] == key_hint(key)


def test_the_pae_is_dsse_v1():
    assert pae(PAYLOAD_TYPE, b"{}") == b"DSSEv1 28 application/vnd.in-toto+json 2 {}"


def test_a_changed_manifest_or_another_key_is_refused(key):
    manifest = (VERSION / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="signs another manifest.json"):
        check_bundle(golden(), (key,), manifest.replace(b"mnist", b"mnisT"))
    other = load_public_key(
        base64.b64encode(
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode()
    )
    with pytest.raises(ValueError, match="does not verify"):
        check_bundle(golden(), (other,), manifest)
    check_bundle(golden(), (other, key), manifest)  # one of the listed keys is enough
    with pytest.raises(ValueError, match="missing"):
        check_bundle(None, (key,), manifest)


def edited(change) -> bytes:
    document = json.loads(golden())
    change(document)
    return json.dumps(document).encode()


def payload_edited(change):
    def edit(document):
        envelope = document["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
        change(statement)
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    return edit


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=0.2"),
        lambda d: d["dsseEnvelope"].update(payloadType="application/json"),
        lambda d: d["dsseEnvelope"].update(payload="not base64!"),
        lambda d: d["dsseEnvelope"].update(payload=7),
        lambda d: d["dsseEnvelope"]["signatures"].append(d["dsseEnvelope"]["signatures"][0]),
        lambda d: d["dsseEnvelope"].update(signatures=[]),
        lambda d: d["dsseEnvelope"]["signatures"][0].update(sig="AAAA"),
        lambda d: d["dsseEnvelope"].pop("signatures"),
        lambda d: d["verificationMaterial"]["publicKey"].update(hint="00" * 32),
        payload_edited(lambda s: s["predicate"]["resources"][0].update(digest="00" * 32)),
        payload_edited(lambda s: s["predicate"]["resources"].pop()),
        payload_edited(lambda s: s.update(predicateType="https://model_signing/Digests/v0.1")),
        lambda d: d.clear(),
    ],
    ids=[
        "media-type",
        "payload-type",
        "payload-not-base64",
        "payload-not-string",
        "two-signatures",
        "no-signature",
        "garbled-signature",
        "signatures-missing",
        "another-keys-hint",
        "digest-changed",
        "file-dropped",
        "old-predicate",
        "empty",
    ],
)
def test_every_change_to_the_bundle_is_refused_with_a_reason(key, change):
    with pytest.raises(ValueError) as refused:
        check_bundle(edited(change), (key,), (VERSION / "manifest.json").read_bytes())
    assert str(refused.value)


@pytest.mark.parametrize(
    "data", [b"", b"[]", b"null", b'"x"', b"\xff\xfe", b"{" * 100, b"[" * 60000, b" " * 70000]
)
def test_what_is_not_a_bundle_is_refused_as_such(key, data):
    with pytest.raises(ValueError):
        read_statement(data, (key,))


def signed_bundle(private, statement: dict) -> bytes:
    """A validly signed bundle of a statement model_signing would not write: the statement's
    own checks must hold even under a valid signature."""
    return bundle_of(statement, private)


def statement_of(files: dict[str, str], **changes) -> dict:
    statement = support_statement(files)
    statement.update(changes)
    return statement


def test_a_validly_signed_statement_must_still_be_consistent(key, private):
    files = {"manifest.json": "ab" * 32, "model.tflite": "cd" * 32}
    assert read_statement(signed_bundle(private, statement_of(files)), (key,)) == files
    wrong_root = statement_of(files)
    wrong_root["subject"][0]["digest"]["sha256"] = "00" * 32
    shards = statement_of(files)
    shards["predicate"]["serialization"]["method"] = "shards"
    upper = statement_of({"manifest.json": "AB" * 32})
    twice = statement_of(files)
    twice["predicate"]["resources"].append(twice["predicate"]["resources"][0])
    for statement, reason in [
        (wrong_root, "subject digest"),
        (shards, "whole files"),
        (upper, "lowercase hex"),
        (twice, "distinct file"),
        (statement_of(files, _type="https://in-toto.io/Statement/v0.1"), "in-toto"),
        (statement_of(files, subject=[]), "0 subjects"),
    ]:
        with pytest.raises(ValueError, match=reason):
            read_statement(signed_bundle(private, statement), (key,))
    without_manifest = signed_bundle(private, statement_of({"model.tflite": "cd" * 32}))
    with pytest.raises(ValueError, match="does not list manifest.json"):
        check_bundle(without_manifest, (key,), b"{}")
