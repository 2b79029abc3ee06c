"""Offline verification of the registry's RSA signatures (RSASSA-PKCS1-v1_5 with SHA-256, the
signatures KMS makes with SigningAlgorithm RSASSA_PKCS1_V1_5_SHA_256), with the standard library.

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
import hashlib
import hmac
from dataclasses import dataclass

RSA_ENCRYPTION_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1
# DER of DigestInfo{sha256, NULL} before the 32-byte digest (RFC 8017, 9.2, note 1)
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MIN_BITS = 2048


@dataclass(frozen=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8


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


def load_public_key(text: str) -> RsaPublicKey:
    """An RSA SubjectPublicKeyInfo, base64 DER (KMS GetPublicKey) or PEM; ValueError if not."""
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the public key is not base64 (DER) or PEM") from None
    start, end = _tlv(der, 0, 0x30)  # SubjectPublicKeyInfo
    if end != len(der):
        raise ValueError("trailing bytes after the public key")
    alg_start, alg_end = _tlv(der, start, 0x30)  # AlgorithmIdentifier
    if not der[alg_start:alg_end].startswith(RSA_ENCRYPTION_OID):
        raise ValueError("not an RSA public key (KMS key spec RSA_2048/3072/4096)")
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
    opened = pow(s, key.e, key.n).to_bytes(k, "big")
    digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(opened, expected)
