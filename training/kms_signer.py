"""A version's OpenSSF Model Signing bundle, signed by AWS KMS (publishing only: model_signing
takes about 0.7 s to import and never reaches the function or its layer).

model-signing 1.1.1 signs with Sigstore, a PEM private key, a certificate or PKCS#11, and has no
KMS signer and no public interface to add one. So this is its `signing.Config.sign` step by step
with its own types (hashing.Config, signing.Payload, sign_sigstore_pb.Signer and Signature,
sigstore_models' Bundle), and one small signer of ours in place of its elliptic-key signer
(`_signing/sign_ec_key.py`, which it follows field for field) that asks KMS to sign the DSSE
PAE. tests/unit/training/test_kms_signer.py checks that model_signing's own verifier accepts the
result.

KMS's contract, not moto's: the PAE is sent as MessageType RAW (KMS hashes it with SHA-256),
which KMS allows up to 4,096 bytes; a longer one is refused here before any call, where moto
would sign it. MessageType DIGEST is never used (moto hashes a digest again, real KMS does not).
Every signature is verified with the key's public key before it is written, so a KMS that
signed anything else is caught at publish time, not by the function.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from pathlib import Path

from mlcore.model_signature import (
    BUNDLE_FILE,
    KMS_KEY_SPEC,
    KMS_RAW_MAX_BYTES,
    KMS_SIGNING_ALGORITHM,
    key_hint,
    read_statement,
)
from mlcore.signing import EcPublicKey, load_public_key, verify_ecdsa


class SigningError(Exception):
    """KMS could not sign, or the key is not one the format allows; the message says which."""


def public_key(kms, key_id: str) -> EcPublicKey:
    """The KMS key's public key, if it is an ECC_NIST_P256 signing key allowed ECDSA_SHA_256."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = kms.get_public_key(KeyId=key_id)
    except (BotoCoreError, ClientError) as exc:
        raise SigningError(f"KMS could not give the public key of {key_id}: {exc}") from exc
    spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
    if spec != KMS_KEY_SPEC or KMS_SIGNING_ALGORITHM not in answer.get("SigningAlgorithms", ()):
        raise SigningError(
            f"{key_id} is a {spec} key: OpenSSF Model Signing bundles need an {KMS_KEY_SPEC} "
            f"key that signs with {KMS_SIGNING_ALGORITHM} (docs/security.md, moving to a new "
            "signing key)"
        )
    return load_public_key(base64.b64encode(answer["PublicKey"]).decode())


def _kms_signer(kms, key_id: str, key: EcPublicKey):
    """model_signing's Signer for `key_id`, built when model_signing is imported."""
    from google.protobuf import json_format
    from model_signing._signing import sign_sigstore_pb, signing
    from sigstore_models import intoto as intoto_pb
    from sigstore_models.bundle import v1 as bundle_pb
    from sigstore_models.common import v1 as common_pb

    class KmsSigner(sign_sigstore_pb.Signer):
        def sign(self, payload: signing.Payload) -> sign_sigstore_pb.Signature:
            raw_payload = json_format.MessageToJson(payload.statement.pb).encode("utf-8")
            message = sign_sigstore_pb.pae(raw_payload)
            signature = sign_raw(kms, key_id, key, message)
            envelope = intoto_pb.Envelope(
                payload=base64.b64encode(raw_payload),
                payload_type=signing._IN_TOTO_JSON_PAYLOAD_TYPE,
                signatures=[intoto_pb.Signature(sig=base64.b64encode(signature), keyid="")],
            )
            material = bundle_pb.VerificationMaterial(
                public_key=common_pb.PublicKeyIdentifier(hint=key_hint(key)), tlog_entries=[]
            )
            return sign_sigstore_pb.Signature(
                bundle_pb.Bundle(
                    media_type=sign_sigstore_pb._BUNDLE_MEDIA_TYPE,
                    verification_material=material,
                    dsse_envelope=envelope,
                )
            )

    return KmsSigner()


def sign_raw(kms, key_id: str, key: EcPublicKey, message: bytes) -> bytes:
    """KMS's ECDSA_SHA_256 signature (DER) of `message`, checked with `key` before use."""
    from botocore.exceptions import BotoCoreError, ClientError

    if len(message) > KMS_RAW_MAX_BYTES:
        raise SigningError(
            f"the statement to sign is {len(message):,} bytes; KMS signs at most "
            f"{KMS_RAW_MAX_BYTES:,} bytes with MessageType RAW (fewer files per version)"
        )
    try:
        answer = kms.sign(
            KeyId=key_id,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=KMS_SIGNING_ALGORITHM,
        )
    except (BotoCoreError, ClientError) as exc:
        raise SigningError(f"KMS could not sign with {key_id}: {exc}") from exc
    if not verify_ecdsa(key, message, answer["Signature"]):
        raise SigningError(f"KMS's signature with {key_id} does not verify with its public key")
    return answer["Signature"]


def sign_version(
    kms, key_id: str, files: dict[str, bytes], folder_name: str, stored: bytes | None = None
) -> bytes:
    """BUNDLE_FILE's content for a version of `files` ({name: exact bytes}: the model, the
    manifest): what `model_signing sign key` would write for a folder holding just them, named
    `folder_name` (the statement's informative subject name), ignoring BUNDLE_FILE itself.
    `stored`: the bundle a publish that was cut short already wrote; ECDSA signatures are
    randomised, so it is kept (not signed again) when it signs these very files with this key."""
    from model_signing import hashing
    from model_signing._signing import signing

    key = public_key(kms, key_id)
    if stored is not None:
        wanted = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
        try:
            if read_statement(stored, (key,)) == wanted:
                return stored
        except ValueError:
            pass  # not ours: signed anew, and the create-only write says what is stored
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / folder_name
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)
        manifest = hashing.Config().set_ignored_paths(paths=[BUNDLE_FILE]).hash(folder)
    signature = _kms_signer(kms, key_id, key).sign(signing.Payload(manifest))
    return signature.bundle.to_json().encode()
