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
    with pytest.raises(ValueError, match="not a P-256 or RSA"):
        load_public_key(spki_base64(ec.generate_private_key(ec.SECP384R1()).public_key()))
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
            r"^not a P-256 or RSA public key \(KMS key spec ECC_NIST_P256, or RSA_2048/3072/4096 "
            r"for versions signed before it\)$",
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


# -- ECDSA P-256 (the OpenSSF bundles' signatures): against `cryptography`, at the edges -------

from cryptography.hazmat.primitives.asymmetric import utils  # noqa: E402

from mlcore.signing import EcPublicKey, N, P, load_public_keys, verify_ecdsa  # noqa: E402


@pytest.fixture(scope="module")
def ec_keypair():
    private = ec.generate_private_key(ec.SECP256R1())
    return private, load_public_key(spki_base64(private.public_key()))


def ec_sign(private, message: bytes) -> bytes:
    return private.sign(message, ec.ECDSA(hashes.SHA256()))


def test_p256_keys_load_with_their_point_and_der():
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_public_key(spki_base64(private.public_key()))
    numbers = private.public_key().public_numbers()
    assert isinstance(key, EcPublicKey) and (key.x, key.y) == (numbers.x, numbers.y)
    assert key.der == base64.b64decode(spki_base64(private.public_key()))
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_public_key(pem.decode()) == key


def test_signatures_by_cryptography_verify_and_nothing_else_does(ec_keypair):
    private, key = ec_keypair
    for size in (0, 1, 55, 64, 800, 5000):
        message = bytes(range(256)) * (size // 256) + bytes(size % 256)
        signature = ec_sign(private, message)
        assert verify_ecdsa(key, message, signature)
        assert not verify_ecdsa(key, message + b"\x00", signature)
        r, s = utils.decode_dss_signature(signature)
        assert verify_ecdsa(key, message, utils.encode_dss_signature(r, N - s))  # ECDSA allows -s
        for bad in ((r, s + 1), (r + 1, s), (0, s), (r, 0), (r + N, s), (r, s + N), (N, s)):
            assert not verify_ecdsa(key, message, utils.encode_dss_signature(*bad))
    other = ec.generate_private_key(ec.SECP256R1())
    assert not verify_ecdsa(key, b"m", ec_sign(other, b"m"))


def test_only_der_in_its_one_encoding_is_read(ec_keypair):
    private, key = ec_keypair
    signature = ec_sign(private, b"m")
    r, s = utils.decode_dss_signature(signature)

    def integer(value: int, pad: bytes = b"") -> bytes:
        body = pad + value.to_bytes(value.bit_length() // 8 + 1, "big")
        return bytes([2, len(body)]) + body

    def sequence(body: bytes, length: bytes | None = None) -> bytes:
        return b"\x30" + (length or bytes([len(body)])) + body

    assert sequence(integer(r) + integer(s)) == signature  # the hand encoding is DER
    for variant in [
        sequence(integer(r, b"\x00") + integer(s)),  # a leading zero not needed
        sequence(integer(r) + integer(s), b"\x81" + bytes([len(signature) - 2])),  # BER length
        signature + b"\x00",  # trailing
        signature[:-1],  # truncated
        sequence(integer(r) + integer(s) + integer(1)),  # a third integer
        b"\x31" + signature[1:],  # a SET
        sequence(integer(r)),  # s missing
        b"",
    ]:
        assert not verify_ecdsa(key, b"m", variant)
    negative = sequence(bytes([2, 1, 0x80]) + integer(s))
    assert not verify_ecdsa(key, b"m", negative)


def test_the_sum_meets_infinity_and_doubling_where_shamirs_trick_does():
    """Signatures built so that u1 G + u2 Q passes through the point at infinity or needs a
    doubling (Q = G, Q = -G): they must verify exactly when the arithmetic says so."""
    import hashlib

    message = b"edge"
    e = int.from_bytes(hashlib.sha256(message).digest(), "big") % N
    g = ec.derive_private_key(1, ec.SECP256R1())
    minus_g = ec.derive_private_key(N - 1, ec.SECP256R1())
    for private in (g, minus_g):
        key = load_public_key(spki_base64(private.public_key()))
        signature = ec_sign(private, message)
        assert verify_ecdsa(key, message, signature)
        # d = 1: u1 + u2 d = e/s + r/s; with s = 1 and r = -e mod n the sum is 0: infinity
        r = (N - e) % N
        if private is g and r:
            assert not verify_ecdsa(key, message, utils.encode_dss_signature(r, 1))


def test_keys_off_the_curve_or_compressed_are_refused():
    private = ec.generate_private_key(ec.SECP256R1())
    der = bytearray(base64.b64decode(spki_base64(private.public_key())))
    der[-1] ^= 1  # y changed: not on the curve
    with pytest.raises(ValueError, match="not a point of P-256"):
        load_public_key(base64.b64encode(bytes(der)).decode())
    compressed = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    short = compressed[:23] + bytes([0x03, len(point) + 1, 0]) + point
    short = bytes([0x30, len(short) - 2]) + short[2:]
    with pytest.raises(ValueError):
        load_public_key(base64.b64encode(short).decode())
    x_too_big = bytearray(base64.b64decode(spki_base64(private.public_key())))
    x_too_big[-64:-32] = (P + 1).to_bytes(32, "big")
    with pytest.raises(ValueError, match="not a point of P-256"):
        load_public_key(base64.b64encode(bytes(x_too_big)).decode())


def test_manifest_public_key_lists_up_to_four_keys_of_both_kinds(ec_keypair):
    _, key = ec_keypair
    rsa_text = spki_base64(MODULUS)
    keys = load_public_keys(f"{base64.b64encode(key.der).decode()}, {rsa_text}")
    assert keys.ec == (key,) and keys.rsa == (load_public_key(rsa_text),)
    assert load_public_keys(rsa_text).ec == ()
    with pytest.raises(ValueError, match="at most 4"):
        load_public_keys(",".join([rsa_text] * 5))
    with pytest.raises(ValueError, match="^key 2 of 2: "):
        load_public_keys(f"{rsa_text},AAAA")
    with pytest.raises(ValueError, match="^key 2 of 2: "):
        load_public_keys(f"{rsa_text},")


def test_moto_kms_ecdsa_raw_signatures_verify_offline():
    """moto's KMS signs ECC_NIST_P256 with ECDSA_SHA_256 and MessageType RAW as real KMS does
    (DER signature of the SHA-256 of the message); its public key is DER SubjectPublicKeyInfo."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        message = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
        signature = kms.sign(
            KeyId=arn, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
        )["Signature"]
        public = base64.b64encode(kms.get_public_key(KeyId=arn)["PublicKey"]).decode()
    key = load_public_key(public)
    assert verify_ecdsa(key, message, signature)
    assert not verify_ecdsa(key, message + b" ", signature)


def test_every_wycheproof_p256_sha256_vector_gets_its_expected_answer():
    """Project Wycheproof's 484 vectors (tests/fixtures/wycheproof/README.md): each signature is
    accepted exactly when it is valid DER of a valid signature, BER and edge cases included."""
    import json

    from tests.conftest import ROOT

    vectors = json.loads(
        (ROOT / "tests/fixtures/wycheproof/ecdsa_secp256r1_sha256_test.json").read_text()
    )
    answers = {"valid": 0, "invalid": 0}
    for group in vectors["testGroups"]:
        key = load_public_key(base64.b64encode(bytes.fromhex(group["publicKeyDer"])).decode())
        for test in group["tests"]:
            got = verify_ecdsa(key, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
            assert got == (test["result"] == "valid"), (test["tcId"], test["comment"])
            answers[test["result"]] += 1
    assert answers == {"valid": 174, "invalid": 310}


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (b"\x00\x03" + bytes(64), "^not an uncompressed P-256 point$"),
        (b"\x01\x04" + bytes(64), "^not an uncompressed P-256 point$"),
        (b"\x00\x04" + bytes(63), "^not an uncompressed P-256 point$"),
        (b"\x00\x04" + bytes(65), "^not an uncompressed P-256 point$"),
        (b"\x00\x04" + bytes(64), "^the public key is not a point of P-256$"),
    ],
    ids=["compressed", "unused-bits", "short", "long", "origin"],
)
def test_each_malformed_p256_key_says_what_is_wrong(point, message):
    algorithm = der(
        0x30, bytes.fromhex("06072a8648ce3d0201") + bytes.fromhex("06082a8648ce3d030107")
    )
    with pytest.raises(ValueError, match=message):
        load_public_key(b64(der(0x30, algorithm + der(0x03, point))))


def test_a_p256_key_with_bytes_after_its_point_is_refused():
    private = ec.generate_private_key(ec.SECP256R1())
    spki_der = base64.b64decode(spki_base64(private.public_key()))
    with pytest.raises(ValueError, match="^trailing bytes after the public key$"):
        load_public_key(b64(spki_der + b"\x00"))
    inner = spki_der[2:] + der(0x05, b"")  # a NULL after the BIT STRING, inside the SEQUENCE
    with pytest.raises(ValueError, match="^not an uncompressed P-256 point$"):
        load_public_key(b64(der(0x30, inner)))


def test_a_coordinate_of_p_or_more_is_refused():
    """x + p is the same x modulo p: only reduced coordinates make a key. The smallest x on the
    curve is small enough for x + p to fit in 32 bytes (p = 3 mod 4: y = a^((p+1)/4))."""
    from mlcore.signing import B

    x = next(x for x in range(100) if pow((x**3 - 3 * x + B) % P, (P - 1) // 2, P) == 1)
    y = pow((x**3 - 3 * x + B) % P, (P + 1) // 4, P)
    algorithm = der(
        0x30, bytes.fromhex("06072a8648ce3d0201") + bytes.fromhex("06082a8648ce3d030107")
    )

    def key(x: int, y: int) -> str:
        point = b"\x00\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
        return b64(der(0x30, algorithm + der(0x03, point)))

    assert (load_public_key(key(x, y)).x, load_public_key(key(x, y)).y) == (x, y)
    with pytest.raises(ValueError, match="^the public key is not a point of P-256$"):
        load_public_key(key(x + P, y))


def test_a_small_r_padded_with_a_zero_is_not_der():
    """Wycheproof's tcId 355 is valid (r = 5, s = 1, the 8 bytes of the shortest DER): the same
    r written as 00 05 is no longer DER, and is refused."""
    import json

    from tests.conftest import ROOT

    vectors = json.loads(
        (ROOT / "tests/fixtures/wycheproof/ecdsa_secp256r1_sha256_test.json").read_text()
    )
    ((group, test),) = [
        (g, t) for g in vectors["testGroups"] for t in g["tests"] if t["tcId"] == 355
    ]
    key = load_public_key(base64.b64encode(bytes.fromhex(group["publicKeyDer"])).decode())
    message, signature = bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
    assert signature == bytes.fromhex("3006020105020101") and verify_ecdsa(key, message, signature)
    assert not verify_ecdsa(key, message, bytes.fromhex("300702020005020101"))


def test_four_keys_are_the_most():
    text = spki_base64(MODULUS)
    assert len(load_public_keys(",".join([text] * 4)).rsa) == 4
