"""mlcore.signing: the function's offline RSA verifier, against `cryptography` (a reference
implementation, in the project's environment only) and moto's KMS signatures."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mlcore.registry import SIGNATURE_ALGORITHM, signed_statement
from mlcore.signing import load_public_key, verify


def spki_base64(public_key) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture(scope="module", params=[2048, 4096])
def keypair(request):
    private = rsa.generate_private_key(public_exponent=65537, key_size=request.param)
    return private, load_public_key(spki_base64(private.public_key()))


def sign(private, message: bytes) -> bytes:
    return private.sign(message, padding.PKCS1v15(), hashes.SHA256())


def test_a_genuine_signature_verifies(keypair):
    private, key = keypair
    message = signed_statement("mnist", 1796000000, "ab" * 32)
    assert verify(key, message, sign(private, message))


def test_anything_changed_does_not_verify(keypair):
    private, key = keypair
    message = signed_statement("mnist", 1796000000, "ab" * 32)
    signature = sign(private, message)
    assert not verify(key, signed_statement("mnist", 1796000000, "cd" * 32), signature)
    assert not verify(key, signed_statement("mnist", 1796000001, "ab" * 32), signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify(key, message, flipped)
    assert not verify(key, message, signature[:-1])
    assert not verify(key, message, b"\x00" + signature)
    assert not verify(key, message, key.n.to_bytes(key.size, "big"))  # s >= n
    assert not verify(key, message, b"")


def test_another_keys_signature_does_not_verify(keypair):
    _, key = keypair
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"statement"
    assert not verify(key, message, sign(other, message))


def test_a_pss_or_sha1_signature_is_not_accepted(keypair):
    private, key = keypair
    message = b"statement"
    pss = private.sign(
        message, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH), hashes.SHA256()
    )
    assert not verify(key, message, pss)
    assert not verify(key, message, private.sign(message, padding.PKCS1v15(), hashes.SHA1()))


def test_public_keys_load_from_der_base64_and_pem_and_nothing_else():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_public_key(pem.decode()) == load_public_key(spki_base64(private.public_key()))
    assert load_public_key(pem.decode()).n == private.public_key().public_numbers().n
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="weak"):
        load_public_key(spki_base64(small.public_key()))
    with pytest.raises(ValueError, match="not an RSA"):
        load_public_key(spki_base64(ec.generate_private_key(ec.SECP256R1()).public_key()))
    for junk in ("", "not base64!", base64.b64encode(b"\x30\x03\x02\x01\x01").decode()):
        with pytest.raises(ValueError):
            load_public_key(junk)


def test_moto_kms_raw_signatures_verify_offline():
    """What the pinned moto supports: RSA SIGN_VERIFY keys, Sign with MessageType RAW (which
    verifies here as real KMS's does), GetPublicKey as DER SubjectPublicKeyInfo."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        message = signed_statement("mnist", 7, "00" * 32)
        signature = kms.sign(
            KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNATURE_ALGORITHM
        )["Signature"]
        public = base64.b64encode(kms.get_public_key(KeyId=key_id)["PublicKey"]).decode()
    key = load_public_key(public)
    assert verify(key, message, signature)
    assert not verify(key, message + b" ", signature)
