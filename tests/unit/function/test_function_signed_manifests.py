"""model_store with MANIFEST_PUBLIC_KEY: only versions whose signature verifies are served; the
others are refused like a checksum mismatch (reported once, the good version keeps serving).

Signatures are made here with `cryptography` (as KMS makes them: RSASSA-PKCS1-v1_5 SHA-256 of
the statement); the integration test does the same with moto's KMS and the real publisher.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from config import load_settings
from mlcore.registry import SIGNATURE_ALGORITHM, signed_statement
from mlcore.signing import load_public_keys
from tests.function_support import new_version, template_environment

V1_OFFSET = 3600


@pytest.fixture(scope="module")
def private_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_base64(private) -> str:
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign_stored(fake_s3, manifest: dict, private, name: str = "mnist") -> None:
    """Sign the manifest as stored (its exact bytes), as make publish does."""
    version = manifest["version"]
    stored = fake_s3.objects[f"models/{name}/{version}/manifest.json"]
    statement = signed_statement(name, version, hashlib.sha256(stored).hexdigest())
    signature = private.sign(statement, padding.PKCS1v15(), hashes.SHA256())
    fake_s3.objects[f"models/{name}/{version}/signature.json"] = json.dumps(
        {"algorithm": SIGNATURE_ALGORITHM, "signature": base64.b64encode(signature).decode()}
    ).encode()


def test_the_public_key_comes_from_the_template_and_is_checked_at_start(private_key):
    assert load_settings(template_environment()).signature_key is None  # default: unsigned
    environment = template_environment(ManifestPublicKey=public_base64(private_key))
    assert load_settings(environment).signature_key == load_public_keys(public_base64(private_key))
    with pytest.raises(ValueError, match="MANIFEST_PUBLIC_KEY"):
        load_settings({**environment, "MANIFEST_PUBLIC_KEY": "AAAA"})


def test_a_validly_signed_version_serves(fake_s3, make_store, manifest, private_key):
    sign_stored(fake_s3, manifest, private_key)
    store = make_store(fake_s3, signature_key=load_public_keys(public_base64(private_key)))
    model = store.get()
    assert model.version == manifest["version"]
    assert "signature" in model.timings_ms


@pytest.mark.parametrize("case", ["unsigned", "other key", "garbled", "wrong algorithm"])
def test_a_version_without_a_valid_signature_is_never_served(
    fake_s3, make_store, manifest, private_key, case
):
    if case == "other key":
        sign_stored(
            fake_s3, manifest, rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    elif case != "unsigned":
        sign_stored(fake_s3, manifest, private_key)
        key = f"models/mnist/{manifest['version']}/signature.json"
        document = json.loads(fake_s3.objects[key])
        if case == "garbled":
            document["signature"] = "not base64!"
        else:
            document["algorithm"] = "RSASSA_PSS_SHA_256"
        fake_s3.objects[key] = json.dumps(document).encode()
    failures: list[tuple] = []
    store = make_store(fake_s3, signature_key=load_public_keys(public_base64(private_key)))
    store._on_failure = lambda version, reason: failures.append((version, reason))
    from errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="refused"):
        store.get()
    assert store.current is None
    assert manifest["version"] in store.refused
    assert f"models/mnist/{manifest['version']}/model.tflite" not in fake_s3.reads  # never fetched
    store._deliver_reports()
    assert [v for v, _ in failures] == [manifest["version"]]
    assert "signature" in failures[0][1]


def test_a_model_replaced_with_its_manifest_is_refused_and_the_good_one_keeps_serving(
    fake_s3, make_store, clock, manifest, model_bytes, private_key
):
    """Someone with write access but without the key publishes V2 and re-signs nothing: they
    replace the model and recompute the manifest's sha256, reusing V1's signature."""
    sign_stored(fake_s3, manifest, private_key)
    store = make_store(
        fake_s3, refresh_seconds=60, signature_key=load_public_keys(public_base64(private_key))
    )
    assert store.get().version == manifest["version"]
    v2 = manifest["version"] + V1_OFFSET
    tampered = bytearray(model_bytes)
    tampered[len(tampered) // 2] ^= 0xFF
    fake_s3.publish(new_version(manifest, v2, bytes(tampered)), bytes(tampered))
    v1_signature = fake_s3.objects[f"models/mnist/{manifest['version']}/signature.json"]
    fake_s3.objects[f"models/mnist/{v2}/signature.json"] = v1_signature  # a replayed signature
    for _ in range(3):
        clock.advance(61)
        assert store.get().version == manifest["version"]
        assert store.wait(10)
    assert "does not verify" in store.refused[v2]
    assert f"models/mnist/{v2}/model.tflite" not in fake_s3.reads


def test_a_signature_that_cannot_be_read_is_retried_not_refused(
    fake_s3, make_store, clock, manifest, private_key
):
    """S3 failing on the signature (not: the signature missing) is a failed read, as for the
    manifest: retried after the backoff, the version never marked refused."""
    sign_stored(fake_s3, manifest, private_key)
    key = f"models/mnist/{manifest['version']}/signature.json"
    real_get = fake_s3.get_object

    def flaky(Bucket, Key):  # noqa: N803
        if Key == key:
            raise ConnectionError("S3 dropped the connection")
        return real_get(Bucket=Bucket, Key=Key)

    fake_s3.get_object = flaky
    store = make_store(fake_s3, signature_key=load_public_keys(public_base64(private_key)))
    from errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="could not be read"):
        store.get()
    assert manifest["version"] not in store.refused
    fake_s3.get_object = real_get
    clock.advance(2)  # past the first retry's backoff (1 s)
    assert store.get().version == manifest["version"]
