"""OpenSSF Model Signing bundles for tests that cannot import model_signing (the functions'
Python 3.13 environment): the statement and bundle exactly as model_signing 1.1.1 lays them
out (tests/unit/mlcore/test_model_signature.py holds its golden bytes), signed with
`cryptography` as KMS's ECDSA_SHA_256 signs."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlcore.model_signature import BUNDLE_MEDIA_TYPE, PAYLOAD_TYPE, PREDICATE_TYPE, pae


def statement_of(digests: dict[str, str], name: str = "1") -> dict:
    """The in-toto statement of files with these sha256 digests (hex), in name order."""
    names = sorted(digests)
    root = hashlib.sha256(b"".join(bytes.fromhex(digests[n]) for n in names)).hexdigest()
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": ["model.sig"],
            },
            "resources": [{"name": n, "algorithm": "sha256", "digest": digests[n]} for n in names],
        },
    }


def bundle_of(statement: dict, private, hint: str = "") -> bytes:
    """A bundle of `statement` signed by the EC `private` key."""
    payload = json.dumps(statement, indent=2).encode()
    signature = private.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    return json.dumps(
        {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
            "dsseEnvelope": {
                "payload": base64.b64encode(payload).decode(),
                "payloadType": PAYLOAD_TYPE,
                "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
            },
        }
    ).encode()


def sign_files(files: dict[str, bytes], private, name: str = "1") -> bytes:
    digests = {n: hashlib.sha256(content).hexdigest() for n, content in files.items()}
    return bundle_of(statement_of(digests, name), private)


def public_base64(private) -> str:
    """The public key as ManifestPublicKey takes it (base64 DER, KMS's GetPublicKey)."""
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()
