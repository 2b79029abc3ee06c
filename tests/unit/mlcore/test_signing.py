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


# -- the DER reader and the key's checks at their edges (what mutation testing found unpinned) --

RSA_ALGORITHM = bytes.fromhex("06092a864886f70d010101") + b"\x05\x00"  # rsaEncryption, NULL


def der(tag: int, content: bytes) -> bytes:
    """One DER element, its length in the short or the long form."""
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def der_integer(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def spki(n: int, e: int, bits_prefix: bytes = b"\x00", algorithm: bytes = RSA_ALGORITHM):
    """A SubjectPublicKeyInfo of an RSA key, built by hand."""
    key = der(0x30, der_integer(n) + der_integer(e))
    return der(0x30, der(0x30, algorithm) + der(0x03, bits_prefix + key))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


MODULUS = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


def test_the_hand_built_key_is_the_standard_encoding():
    numbers = MODULUS.public_numbers()
    assert spki(numbers.n, numbers.e) == base64.b64decode(spki_base64(MODULUS))


@pytest.mark.parametrize("e", [3, 65537, 2**32 + 1])
def test_any_odd_exponent_from_3_loads(e):
    n = MODULUS.public_numbers().n
    key = load_public_key(b64(spki(n, e)))
    assert (key.n, key.e, key.size) == (n, e, 256)


@pytest.mark.parametrize("e", [1, 2, 4, 65536])
def test_an_exponent_below_3_or_even_is_refused(e):
    with pytest.raises(ValueError, match=r"RSA key too weak or malformed \(2048 bits\)"):
        load_public_key(b64(spki(MODULUS.public_numbers().n, e)))


def test_the_modulus_must_have_2048_bits_or_more():
    assert load_public_key(b64(spki(2**2047 + 1, 65537))).size == 256
    with pytest.raises(ValueError, match=r"too weak or malformed \(2047 bits\)"):
        load_public_key(b64(spki(2**2046 + 1, 65537)))


def test_a_key_with_anything_but_base64_is_refused_not_cleaned():
    text = b64(spki(MODULUS.public_numbers().n, 65537))
    with pytest.raises(ValueError, match=r"^the public key is not base64 \(DER\) or PEM$"):
        load_public_key(text[:40] + "*" + text[40:])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda n: spki(n, 65537) + b"\x00", "^trailing bytes after the public key$"),
        (lambda n: spki(n, 65537, bits_prefix=b"\x01"), "^bad public key bit string$"),
        (lambda n: der(0x30, der(0x30, RSA_ALGORITHM) + der(0x03, b"")), "^bad public key bit"),
        (
            lambda n: spki(n, 65537, algorithm=bytes.fromhex("06072a8648ce3d0201")),
            r"^not an RSA public key \(KMS key spec RSA_2048/3072/4096\)$",
        ),
        (lambda n: spki(n, 65537)[:-1], "^DER element runs past the end$"),
    ],
    ids=["trailing", "unused-bits", "empty-bits", "not-rsa", "truncated"],
)
def test_each_malformed_key_says_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        load_public_key(b64(make(MODULUS.public_numbers().n)))


@pytest.mark.parametrize(
    ("data", "element"),
    [
        (b"\x30\x00", (2, 2)),
        (b"\x30\x01\xff", (2, 3)),
        (b"\x30\x81\x01\xff", (3, 4)),
        (b"\x30\x82\x00\x00", (4, 4)),  # the length's bytes end where the data ends
        (b"\x30\x84\x00\x00\x00\x01\xff", (6, 7)),  # four length bytes: the most allowed
    ],
    ids=["empty", "short", "long-1", "long-2-at-end", "long-4"],
)
def test_der_lengths_in_the_short_and_long_forms(data, element):
    from mlcore.signing import _tlv

    assert _tlv(data, 0, 0x30) == element


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x30", r"^expected DER tag 0x30 at byte 0$"),
        (b"\x02\x00", r"^expected DER tag 0x30 at byte 0$"),
        (b"\x30\x80", r"^bad DER length$"),  # long form with no length bytes
        (b"\x30\x85\x00\x00\x00\x00\x01\xff", r"^bad DER length$"),  # five length bytes
        (b"\x30\x82\x00", r"^bad DER length$"),  # the length's bytes run past the end
        (b"\x30\x02\xff", r"^DER element runs past the end$"),
        (b"\x30\x82\x01\x00" + b"\xff" * 255, r"^DER element runs past the end$"),
    ],
    ids=[
        "one-byte",
        "wrong-tag",
        "no-length-bytes",
        "five-length-bytes",
        "length-cut",
        "content-cut",
        "long-content-cut",
    ],
)
def test_der_that_is_cut_short_or_malformed_is_refused(data, message):
    from mlcore.signing import _tlv

    with pytest.raises(ValueError, match=message):
        _tlv(data, 0, 0x30)
