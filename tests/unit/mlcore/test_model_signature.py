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
from cryptography.hazmat.primitives import hashes, serialization
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


def resources_edited(change):
    """A validly signed statement of the golden folder's files, changed by `change`."""

    def build(private) -> bytes:
        files = {
            n: hashlib.sha256((VERSION / n).read_bytes()).hexdigest() for n in MANIFEST_AND_MODEL
        }
        statement = support_statement(files)
        change(statement)
        return signed_bundle(private, statement)

    return build


MANIFEST_AND_MODEL = ("manifest.json", "model.tflite")
ENVELOPE_CASES = {  # a change to the golden bundle -> the whole message
    "payload-not-base64": (
        lambda d: d["dsseEnvelope"].update(payload="e30=!"),
        "dsseEnvelope.payload is not base64",
    ),
    "sig-not-base64": (
        lambda d: d["dsseEnvelope"]["signatures"][0].update(sig="MEUC!"),
        "dsseEnvelope.signatures[0].sig is not base64",
    ),
    "two-signatures": (
        lambda d: d["dsseEnvelope"]["signatures"].append({"sig": "AA==", "keyid": ""}),
        "dsseEnvelope holds 2 signatures, not one",
    ),
    "sig-missing": (
        lambda d: d["dsseEnvelope"]["signatures"][0].pop("sig"),
        "sig is missing",
    ),
    "payload-type": (
        lambda d: d["dsseEnvelope"].update(payloadType=["application/vnd.in-toto+json"]),
        "dsseEnvelope.payloadType is not a JSON str",
    ),
    "media-type": (
        lambda d: d.update(mediaType="application/json"),
        "mediaType is not application/vnd.dev.sigstore.bundle.v0.3+json",
    ),
}
ONE_KEY = (
    "its signature does not verify with MANIFEST_PUBLIC_KEY's P-256 key (a file changed after "
    "signing, or another key signed it)"
)


@pytest.mark.parametrize("case", sorted(ENVELOPE_CASES))
def test_each_envelope_refusal_says_exactly_what_is_wrong(key, case):
    change, message = ENVELOPE_CASES[case]
    with pytest.raises(ValueError) as refused:
        read_statement(edited(change), (key,))
    assert str(refused.value) == message


def test_the_size_limit_and_json_refusals_say_so(key):
    from mlcore.model_signature import MAX_BUNDLE_BYTES

    with pytest.raises(ValueError) as refused:
        read_statement(b" " * MAX_BUNDLE_BYTES + b"{}", (key,))
    assert str(refused.value) == "65,538 bytes: a bundle is at most 65,536"
    with pytest.raises(ValueError) as refused:  # at the limit: read (and then found wanting)
        read_statement(b"{}".ljust(MAX_BUNDLE_BYTES), (key,))
    assert str(refused.value) == "mediaType is missing"
    with pytest.raises(ValueError) as refused:
        read_statement(b"{", (key,))
    assert str(refused.value) == "the bundle is not JSON"


def test_the_refusal_names_one_key_or_several(key):
    other = load_public_key(
        (FIXTURE / "test-signing-key.pub.pem").read_text()
    )  # the same key twice: still "keys"
    with pytest.raises(ValueError) as refused:
        read_statement(
            edited(lambda d: d["dsseEnvelope"]["signatures"][0].update(sig="AAAA")), (key,)
        )
    assert str(refused.value) == ONE_KEY
    with pytest.raises(ValueError) as refused:
        read_statement(
            edited(lambda d: d["dsseEnvelope"]["signatures"][0].update(sig="AAAA")), (key, other)
        )
    assert str(refused.value) == ONE_KEY.replace("P-256 key", "P-256 keys")


def test_verification_material_of_another_shape_is_no_hint(key):
    """The hint is optional (model_signing checks it only when present): a bundle whose
    verificationMaterial or publicKey is not an object still verifies by its signature."""
    for change in (
        lambda d: d.update(verificationMaterial=[]),
        lambda d: d["verificationMaterial"].update(publicKey="x"),
        lambda d: d.pop("verificationMaterial"),
    ):
        assert set(read_statement(edited(change), (key,))) == set(MANIFEST_AND_MODEL)


STATEMENT_CASES = {  # a change to a validly signed statement -> the whole message
    "not-json": (None, "the signed statement is not JSON"),
    "type": (lambda s: s.update(_type="x"), "_type is not https://in-toto.io/Statement/v1"),
    "shards": (
        lambda s: s["predicate"]["serialization"].update(method="shards"),
        "the statement does not hash whole files with sha256",
    ),
    "blake2": (
        lambda s: s["predicate"]["serialization"].update(hash_type="blake2b"),
        "the statement does not hash whole files with sha256",
    ),
    "root": (
        lambda s: s["subject"][0]["digest"].update(sha256="00" * 32),
        "the statement's subject digest is not that of its resources",
    ),
    "root-not-hex": (
        lambda s: s["subject"][0]["digest"].update(sha256="X" * 64),
        "subject[0].digest.sha256 is not a SHA-256 in lowercase hex",
    ),
    "resource-not-object": (
        lambda s: s["predicate"]["resources"].insert(0, "manifest.json"),
        "predicate.resources[0] is not a distinct file with a sha256 digest",
    ),
    "md5": (
        lambda s: s["predicate"]["resources"][1].update(algorithm="md5"),
        "predicate.resources[1] is not a distinct file with a sha256 digest",
    ),
    "digest-missing": (
        lambda s: s["predicate"]["resources"][1].pop("digest"),
        "predicate.resources[1].digest is not a SHA-256 in lowercase hex",
    ),
    "digest-short": (
        lambda s: s["predicate"]["resources"][0].update(digest="ab" * 31),
        "predicate.resources[0].digest is not a SHA-256 in lowercase hex",
    ),
}


@pytest.mark.parametrize("case", sorted(STATEMENT_CASES))
def test_each_statement_refusal_says_exactly_what_is_wrong(key, private, case):
    change, message = STATEMENT_CASES[case]
    if change is None:
        bundle = json.loads(signed_bundle(private, {}))
        payload = b"{not json"
        from mlcore.model_signature import PAYLOAD_TYPE as kind

        signature = private.sign(pae(kind, payload), ec.ECDSA(hashes.SHA256()))
        bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(signature).decode()
        data = json.dumps(bundle).encode()
    else:
        data = resources_edited(change)(private)
    with pytest.raises(ValueError) as refused:
        read_statement(data, (key,))
    assert str(refused.value) == message


def test_another_manifest_is_named_as_such(key):
    with pytest.raises(ValueError) as refused:
        check_bundle(golden(), (key,), b"{}")
    assert str(refused.value) == (
        "it signs another manifest.json (the manifest changed after signing, or the bundle is "
        "another version's)"
    )
