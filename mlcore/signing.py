"""Offline verification of the registry's signatures, with the standard library: ECDSA over
NIST P-256 with SHA-256 (KMS key spec ECC_NIST_P256, SigningAlgorithm ECDSA_SHA_256: the OpenSSF
Model Signing bundles of mlcore.model_signature) and RSASSA-PKCS1-v1_5 with SHA-256 (KMS's
RSASSA_PKCS1_V1_5_SHA_256: the versions signed before it, SIGNATURE_FILE).

Why not a library for ECDSA either: measured on Python 3.13 here, fresh processes, import and one
verification of a P-256 signature: this module 8-15 ms, `cryptography` 22-42 ms (and 13 MB of
native wheels in the layer), `ecdsa` 28 ms (pure Python, with `six`). Verifying is SEC 1 v2,
4.1.4: r and s in [1, n-1], u1 = e/s, u2 = r/s, R = u1 G + u2 Q (Shamir's trick in Jacobian
coordinates), accept only if R is not the point at infinity and x(R) = r (mod n). Nothing is
secret in a verification, so nothing needs to run in constant time. The signature is DER as KMS
returns it, read strictly (one encoding per signature: no BER lengths, no padded or negative
integers). The public key is checked to lie on the curve when it is loaded. tests/unit/mlcore/
test_signing.py checks it against `cryptography`, edge cases of the arithmetic and moto's KMS.

RSA:

Why not a library: the function's layer carries no crypto library (the Lambda runtime has none
either); `cryptography` would add its native wheels to the layer and `rsa` imports pyasn1 (33 ms
measured on a cold path). Verifying is one modular exponentiation and a comparison: the
signature is opened with the public key and compared, byte for byte and in constant time, with
the one encoding the message's digest may have (RFC 8017, 8.2.2: encode, then compare; nothing
in the signature is parsed, which is what the known PKCS#1 v1.5 forgeries exploit). The public
key is configuration, not input: it is parsed once, strictly, from the DER that KMS's
GetPublicKey returns. tests/unit/mlcore/test_signing.py checks it against `cryptography` and
moto's KMS.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

RSA_ENCRYPTION_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1
# DER of DigestInfo{sha256, NULL} before the 32-byte digest (RFC 8017, 9.2, note 1)
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MIN_BITS = 2048
EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1 id-ecPublicKey
P256_OID = bytes.fromhex("06082a8648ce3d030107")  # 1.2.840.10045.3.1.7 prime256v1 (secp256r1)

# NIST P-256 (FIPS 186-5 / SEC 2, secp256r1): y^2 = x^3 - 3x + b over GF(p), group order n.
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


@dataclass(frozen=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8


@dataclass(frozen=True)
class EcPublicKey:
    """A point (x, y) of P-256 other than infinity, checked to be on the curve."""

    x: int
    y: int
    der: bytes  # its SubjectPublicKeyInfo, as KMS's GetPublicKey returns it


@dataclass(frozen=True)
class PublicKeys:
    """MANIFEST_PUBLIC_KEY: the keys each signature format verifies with (ECDSA P-256 for the
    OpenSSF bundles, RSA for the versions signed before them)."""

    ec: tuple[EcPublicKey, ...] = ()
    rsa: tuple[RsaPublicKey, ...] = ()


def _tlv(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """(start, end) of the content of the DER element at `pos`, which must have `tag`."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError(f"expected DER tag {tag:#x} at byte {pos}")
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    if pos + length > len(data):
        raise ValueError("DER element runs past the end")
    return pos, pos + length


def load_public_keys(text: str, most: int = 4) -> PublicKeys:
    """MANIFEST_PUBLIC_KEY: one or more public keys (base64 DER, as KMS's GetPublicKey gives
    them, separated by commas), at most `most`; a ValueError names the one that is wrong."""
    ec, rsa = [], []
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > most:
        raise ValueError(f"{len(parts)} public keys: at most {most}, separated by commas")
    for index, part in enumerate(parts, 1):
        try:
            key = load_public_key(part)
        except ValueError as exc:
            raise ValueError(f"key {index} of {len(parts)}: {exc}") from None
        (ec if isinstance(key, EcPublicKey) else rsa).append(key)
    return PublicKeys(ec=tuple(ec), rsa=tuple(rsa))


def load_public_key(text: str) -> RsaPublicKey | EcPublicKey:
    """A P-256 or RSA SubjectPublicKeyInfo, base64 DER (KMS GetPublicKey) or PEM; ValueError if
    not."""
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the public key is not base64 (DER) or PEM") from None
    start, end = _tlv(der, 0, 0x30)  # SubjectPublicKeyInfo
    if end != len(der):
        raise ValueError("trailing bytes after the public key")
    alg_start, alg_end = _tlv(der, start, 0x30)  # AlgorithmIdentifier
    if der[alg_start:alg_end] == EC_PUBLIC_KEY_OID + P256_OID:
        return _ec_key(der, alg_end)
    if not der[alg_start:alg_end].startswith(RSA_ENCRYPTION_OID):
        raise ValueError(
            "not a P-256 or RSA public key (KMS key spec ECC_NIST_P256, or RSA_2048/3072/4096 "
            "for versions signed before it)"
        )
    bits_start, bits_end = _tlv(der, alg_end, 0x03)  # BIT STRING, no unused bits
    if bits_start >= bits_end or der[bits_start] != 0:
        raise ValueError("bad public key bit string")
    seq_start, _ = _tlv(der, bits_start + 1, 0x30)  # RSAPublicKey
    n_start, n_end = _tlv(der, seq_start, 0x02)
    e_start, e_end = _tlv(der, n_end, 0x02)
    key = RsaPublicKey(
        int.from_bytes(der[n_start:n_end], "big"), int.from_bytes(der[e_start:e_end], "big")
    )
    if key.n.bit_length() < MIN_BITS or key.e < 3 or key.e % 2 == 0:
        raise ValueError(f"RSA key too weak or malformed ({key.n.bit_length()} bits)")
    return key


def verify(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """True only if `signature` is the RSASSA-PKCS1-v1_5 SHA-256 signature of `message`."""
    k = key.size
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    import hashlib  # here, not at import: hashlib loads OpenSSL (model_store._sha256)
    import hmac

    opened = pow(s, key.e, key.n).to_bytes(k, "big")
    digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(opened, expected)


def _ec_key(der: bytes, pos: int) -> EcPublicKey:
    """The uncompressed point in the BIT STRING at `pos`, on P-256 (SEC 1 v2, 3.2.2.1)."""
    bits_start, bits_end = _tlv(der, pos, 0x03)
    point = der[bits_start:bits_end]
    if bits_end != len(der) or len(point) != 66 or point[:2] != b"\x00\x04":
        raise ValueError("not an uncompressed P-256 point")
    x, y = int.from_bytes(point[2:34], "big"), int.from_bytes(point[34:], "big")
    if x >= P or y >= P or (y * y - x * x * x + 3 * x - B) % P:
        raise ValueError("the public key is not a point of P-256")
    return EcPublicKey(x, y, der)


def _der_signature(signature: bytes) -> tuple[int, int] | None:
    """(r, s) of a DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs, RFC 3279 2.2.3), or None
    unless it is in DER's one encoding: short lengths, minimal positive integers, no more."""
    if len(signature) < 8 or signature[0] != 0x30 or signature[1] != len(signature) - 2:
        return None
    values, pos = [], 2
    for _ in range(2):
        if pos + 2 > len(signature) or signature[pos] != 0x02:
            return None
        length, pos = signature[pos + 1], pos + 2
        value = signature[pos : pos + length]
        if not 1 <= length <= 33 or len(value) != length or value[0] & 0x80:
            return None  # empty, too long for P-256, truncated or negative
        if length > 1 and value[0] == 0 and not value[1] & 0x80:
            return None  # a leading zero that is not needed
        values.append(int.from_bytes(value, "big"))
        pos += length
    return (values[0], values[1]) if pos == len(signature) else None


def _double(X: int, Y: int, Z: int) -> tuple[int, int, int]:
    """2(X, Y, Z) in Jacobian coordinates, a = -3 (dbl-2001-b, the Explicit-Formulas Database).
    No point of P-256 has y = 0 (its order is prime), and the point at infinity (Z = 0) doubles
    to Z3 = 2YZ = 0, itself: no special case."""
    YY = Y * Y % P
    S = 4 * X * YY % P
    ZZ = Z * Z % P
    M = 3 * (X - ZZ) * (X + ZZ) % P
    X3 = (M * M - 2 * S) % P
    return X3, (M * (S - X3) - 8 * YY * YY) % P, 2 * Y * Z % P


def _add(X1: int, Y1: int, Z1: int, X2: int, Y2: int, Z2: int) -> tuple[int, int, int]:
    """(X1, Y1, Z1) + (X2, Y2, Z2) in Jacobian coordinates (add-2007-bl without its tricks),
    with the point at infinity (Z = 0) and equal or opposite points handled."""
    if not Z1:
        return X2, Y2, Z2
    if not Z2:
        return X1, Y1, Z1
    Z1Z1, Z2Z2 = Z1 * Z1 % P, Z2 * Z2 % P
    U1, U2 = X1 * Z2Z2 % P, X2 * Z1Z1 % P
    S1, S2 = Y1 * Z2 * Z2Z2 % P, Y2 * Z1 * Z1Z1 % P
    H, R = (U2 - U1) % P, (S2 - S1) % P
    if not H:
        return _double(X1, Y1, Z1) if not R else (0, 1, 0)
    HH = H * H % P
    HHH = H * HH % P
    V = U1 * HH % P
    X3 = (R * R - HHH - 2 * V) % P
    return X3, (R * (V - X3) - S1 * HHH) % P, H * Z1 * Z2 % P


def verify_ecdsa(key: EcPublicKey, message: bytes, signature: bytes) -> bool:
    """True only if `signature` (DER) is an ECDSA P-256 SHA-256 signature of `message` by
    `key` (SEC 1 v2, 4.1.4), as KMS's ECDSA_SHA_256 makes it with MessageType RAW."""
    values = _der_signature(signature)
    if values is None:
        return False
    r, s = values
    if not (1 <= r < N and 1 <= s < N):
        return False
    import hashlib  # here, not at import: hashlib loads OpenSSL (model_store._sha256)

    e = int.from_bytes(hashlib.sha256(message).digest(), "big")  # 256 bits: no truncation
    w = pow(s, -1, N)
    u1, u2 = e * w % N, r * w % N
    g, q = (*G, 1), (key.x, key.y, 1)
    table = (None, g, q, _add(*g, *q))
    point = (0, 1, 0)
    for i in range(max(u1.bit_length(), u2.bit_length()) - 1, -1, -1):
        point = _double(*point)
        pick = (u1 >> i & 1) | (u2 >> i & 1) << 1
        if pick:
            point = _add(*point, *table[pick])
    X, _, Z = point
    if not Z:
        return False
    return X * pow(Z * Z, -1, P) % P % N == r
