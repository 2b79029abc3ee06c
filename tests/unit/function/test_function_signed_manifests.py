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
from model_store import VERIFY_ATTEMPTS
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


# -- OpenSSF Model Signing bundles (model.sig), and both formats side by side ---------------


@pytest.fixture(scope="module")
def ec_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def bundle_stored(fake_s3, manifest: dict, private, name: str = "mnist") -> bytes:
    """model.sig over the version's stored files, as make publish writes it."""
    from tests.model_signing_support import sign_files

    base = f"models/{name}/{manifest['version']}"
    files = {f: fake_s3.objects[f"{base}/{f}"] for f in ("model.tflite", "manifest.json")}
    fake_s3.objects[f"{base}/model.sig"] = sign_files(files, private, str(manifest["version"]))
    return fake_s3.objects[f"{base}/model.sig"]


def ec_keys(*privates):
    from tests.model_signing_support import public_base64 as ec_public

    return load_public_keys(",".join(ec_public(p) for p in privates))


def test_a_version_with_a_valid_bundle_serves(fake_s3, make_store, manifest, ec_key):
    bundle_stored(fake_s3, manifest, ec_key)
    store = make_store(fake_s3, signature_key=ec_keys(ec_key))
    assert store.get().version == manifest["version"]
    assert f"models/mnist/{manifest['version']}/signature.json" not in fake_s3.reads


@pytest.mark.parametrize(
    "case", ["tampered model", "tampered manifest", "another key", "another version", "none"]
)
def test_a_bad_bundle_is_refused_and_the_last_good_version_keeps_serving(
    fake_s3, make_store, clock, manifest, model_bytes, ec_key, case
):
    from cryptography.hazmat.primitives.asymmetric import ec

    bundle_stored(fake_s3, manifest, ec_key)
    store = make_store(fake_s3, refresh_seconds=60, signature_key=ec_keys(ec_key))
    v1 = manifest["version"]
    assert store.get().version == v1
    v2 = v1 + V1_OFFSET
    model = bytearray(model_bytes)
    if case == "tampered model":
        fake_s3.publish(new_version(manifest, v2), model_bytes)
        bundle_stored(fake_s3, new_version(manifest, v2), ec_key)
        model[len(model) // 2] ^= 0xFF
        fake_s3.objects[f"models/mnist/{v2}/model.tflite"] = bytes(model)  # after signing
        reason = "sha256"
    elif case == "tampered manifest":
        fake_s3.publish(new_version(manifest, v2), model_bytes)
        bundle_stored(fake_s3, new_version(manifest, v2), ec_key)
        model[len(model) // 2] ^= 0xFF
        forged = new_version(manifest, v2, bytes(model))  # the model and its manifest replaced
        fake_s3.publish(forged, bytes(model))
        reason = "signs another manifest.json"
    elif case == "another key":
        fake_s3.publish(new_version(manifest, v2), model_bytes)
        bundle_stored(fake_s3, new_version(manifest, v2), ec.generate_private_key(ec.SECP256R1()))
        reason = "does not verify"
    elif case == "another version":
        fake_s3.publish(new_version(manifest, v2), model_bytes)
        v1_bundle = fake_s3.objects[f"models/mnist/{v1}/model.sig"]
        fake_s3.objects[f"models/mnist/{v2}/model.sig"] = v1_bundle
        reason = "signs another manifest.json"
    else:
        fake_s3.publish(new_version(manifest, v2), model_bytes)
        reason = "model.sig is refused: it is missing"
    # a checksum mismatch may heal (read again with backoff, at most a minute apart) until
    # VERIFY_ATTEMPTS; a signature refusal is at once: both end refused, v1 served throughout
    for _ in range(VERIFY_ATTEMPTS + 1):
        clock.advance(61)
        assert store.get().version == v1
        assert store.wait(10)
    assert reason in store.refused[v2]
    if case != "tampered model":  # refused before the model is fetched
        assert f"models/mnist/{v2}/model.tflite" not in fake_s3.reads


def test_versions_signed_in_the_earlier_format_keep_serving_beside_bundles(
    fake_s3, make_store, clock, manifest, model_bytes, private_key, ec_key
):
    """MANIFEST_PUBLIC_KEY with the new P-256 key and the old RSA key: a version that has only
    signature.json (signed before bundles) serves, so does the next one signed with a bundle;
    with the P-256 key alone, the old version is refused as unsigned."""
    sign_stored(fake_s3, manifest, private_key)  # the earlier format (RSA)
    both = load_public_keys(f"{_ec_text(ec_key)},{public_base64(private_key)}")
    assert len(both.ec) == 1 and len(both.rsa) == 1
    store = make_store(fake_s3, refresh_seconds=60, signature_key=both)
    assert store.get().version == manifest["version"]
    v2 = manifest["version"] + V1_OFFSET
    fake_s3.publish(new_version(manifest, v2), model_bytes)
    bundle_stored(fake_s3, new_version(manifest, v2), ec_key)
    clock.advance(61)
    store.get()
    assert store.wait(10)
    assert store.get().version == v2
    assert f"models/mnist/{v2}/signature.json" not in fake_s3.reads

    only_ec = make_store(fake_s3, signature_key=ec_keys(ec_key))
    assert only_ec.get().version == v2
    from errors import ModelUnavailable

    fake_s3.publish(manifest, model_bytes)  # the pointer back to the old version
    stale = make_store(fake_s3, signature_key=ec_keys(ec_key))
    with pytest.raises(ModelUnavailable, match="refused"):
        stale.get()
    assert "model.sig is refused: it is missing" in stale.refused[manifest["version"]]


def _ec_text(private) -> str:
    from tests.model_signing_support import public_base64 as ec_public

    return ec_public(private)
