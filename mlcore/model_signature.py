"""A version's signature in the OpenSSF Model Signing v1.0 format, read and verified offline
without the `model-signing` package (0.7 s to import; the function never imports it).

The format (https://github.com/ossf/model-signing-spec, v1.0; what `model_signing sign key`
writes): BUNDLE_FILE in the version's folder is a Sigstore bundle (JSON, media type
BUNDLE_MEDIA_TYPE) holding a DSSE envelope: a base64 in-toto statement (PAYLOAD_TYPE) and one
ECDSA signature over the envelope's PAE encoding. The statement's predicate lists every file of
the folder with its SHA-256 (`resources`), and its one subject carries the SHA-256 of those
digests in name order. `verificationMaterial.publicKey.hint` is the SHA-256 of the signing key's
PEM, which model_signing compares with the key it is given.

`make publish SIGNING_KEY=...` builds it with model_signing's own types and KMS as the signer
(training/kms_signer.py); `model_signing verify key VERSION_DIR --signature VERSION_DIR/model.sig
--public_key KEY.pem` checks a downloaded folder. Here, check_bundle() answers what the function
needs before it uses a version: that one of its keys signed, and that the statement signs the
manifest's exact bytes (which hold every other file's sha256). The bundle is hostile until its
signature verifies: every field is checked for its type and size, and every failure is a
ValueError that says what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from mlcore.registry import MANIFEST_FILE
from mlcore.signing import EcPublicKey, verify_ecdsa

BUNDLE_FILE = "model.sig"  # model_signing's default --signature name
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# KMS's name of the signature (the template's Signing mapping holds the same text, SignerRole's
# kms:SigningAlgorithm condition): ECDSA over P-256 with SHA-256, key spec ECC_NIST_P256.
KMS_SIGNING_ALGORITHM = "ECDSA_SHA_256"
KMS_KEY_SPEC = "ECC_NIST_P256"
# KMS signs at most 4,096 bytes with MessageType RAW (KMS API reference, Sign: Message). The
# PAE of a version's statement is about 800 bytes; the publisher refuses a longer one instead
# of relying on moto, which accepts any length.
KMS_RAW_MAX_BYTES = 4096
MAX_BUNDLE_BYTES = 64 * 1024  # a real bundle is about 1.5 KB


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding: what the signature signs (DSSE protocol.md)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_hint(key: EcPublicKey) -> str:
    """The bundle's publicKey.hint for `key`: SHA-256 of its PEM SubjectPublicKeyInfo, as
    model_signing computes it (cryptography's PEM: 64-character lines, final newline)."""
    body = base64.b64encode(key.der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem = "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----", ""])
    import hashlib  # here, not at import: hashlib loads OpenSSL (model_store._sha256)

    return hashlib.sha256(pem.encode()).hexdigest()


def _field(document: Any, path: str, kind: type) -> Any:
    value = document
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            raise ValueError(f"{path} is missing")
        value = value[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{path} is not a JSON {kind.__name__}")
    return value


def _expect(document: Any, path: str, value: str) -> None:
    if _field(document, path, str) != value:
        raise ValueError(f"{path} is not {value}")


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError(f"{what} is not JSON") from None


def _base64(text: str, path: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{path} is not base64") from None


def _digest(value: Any, path: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise ValueError(f"{path} is not a SHA-256 in lowercase hex")
    return value


def read_statement(bundle: bytes, keys: tuple[EcPublicKey, ...]) -> dict[str, str]:
    """The files a bundle's statement lists ({name: sha256 hex}), once its signature verifies
    with one of `keys`; a ValueError saying why not otherwise."""
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise ValueError(f"{len(bundle):,} bytes: a bundle is at most {MAX_BUNDLE_BYTES:,}")
    document = _json(bundle, "the bundle")
    _expect(document, "mediaType", BUNDLE_MEDIA_TYPE)
    _expect(document, "dsseEnvelope.payloadType", PAYLOAD_TYPE)
    payload = _base64(_field(document, "dsseEnvelope.payload", str), "dsseEnvelope.payload")
    signatures = _field(document, "dsseEnvelope.signatures", list)
    if len(signatures) != 1:
        raise ValueError(f"dsseEnvelope holds {len(signatures)} signatures, not one")
    signature = _base64(_field(signatures[0], "sig", str), "dsseEnvelope.signatures[0].sig")
    material = document.get("verificationMaterial")
    public_key = material.get("publicKey") if isinstance(material, dict) else None
    hint = public_key.get("hint") if isinstance(public_key, dict) else None  # empty or absent: none
    signed = pae(PAYLOAD_TYPE, payload)
    if not any(
        (not hint or hint == key_hint(key)) and verify_ecdsa(key, signed, signature) for key in keys
    ):
        raise ValueError(
            "its signature does not verify with MANIFEST_PUBLIC_KEY's P-256 key"
            + ("s" if len(keys) > 1 else "")
            + " (a file changed after signing, or another key signed it)"
        )
    return _resources(payload)


def _resources(payload: bytes) -> dict[str, str]:
    """{name: sha256} of a signed statement, checked as model_signing checks it (in-toto v1,
    the v1.0 predicate, file serialization with SHA-256, and the subject's digest of digests)."""
    statement = _json(payload, "the signed statement")
    _expect(statement, "_type", STATEMENT_TYPE)
    _expect(statement, "predicateType", PREDICATE_TYPE)
    serialization = _field(statement, "predicate.serialization", dict)
    if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
        raise ValueError("the statement does not hash whole files with sha256")
    subjects = _field(statement, "subject", list)
    if len(subjects) != 1:
        raise ValueError(f"the statement has {len(subjects)} subjects, not one")
    root = _digest(_field(subjects[0], "digest.sha256", str), "subject[0].digest.sha256")
    import hashlib  # here, not at import: hashlib loads OpenSSL (model_store._sha256)

    files, hasher = {}, hashlib.sha256()
    for index, resource in enumerate(_field(statement, "predicate.resources", list)):
        where = f"predicate.resources[{index}]"
        name = _field(resource, "name", str) if isinstance(resource, dict) else None
        if name is None or resource.get("algorithm") != "sha256" or name in files:
            raise ValueError(f"{where} is not a distinct file with a sha256 digest")
        files[name] = _digest(resource.get("digest"), f"{where}.digest")
        hasher.update(bytes.fromhex(files[name]))
    if hasher.hexdigest() != root:
        raise ValueError("the statement's subject digest is not that of its resources")
    return files


def check_bundle(
    bundle: bytes | None, keys: tuple[EcPublicKey, ...], manifest_bytes: bytes
) -> None:
    """Nothing if `bundle` is signed by one of `keys` and its statement signs `manifest_bytes`
    as MANIFEST_FILE; a ValueError saying why not otherwise (None: the version has none). The
    manifest holds the sha256 of every other file of the version, which the function checks as
    it downloads them: signing the manifest's exact bytes signs them all (and the version,
    which the manifest names)."""
    if bundle is None:
        raise ValueError("it is missing: the version is unsigned, or signed in the earlier format")
    import hashlib  # here, not at import: hashlib loads OpenSSL (model_store._sha256)

    signed = read_statement(bundle, keys)
    if MANIFEST_FILE not in signed:
        raise ValueError(f"its statement does not list {MANIFEST_FILE}")
    if signed[MANIFEST_FILE] != hashlib.sha256(manifest_bytes).hexdigest():
        raise ValueError(
            f"it signs another {MANIFEST_FILE} (the manifest changed after signing, or the "
            "bundle is another version's)"
        )
