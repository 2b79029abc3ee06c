"""The manifest of a generic model: any TFLite model, published as it is (`make publish MODEL=`).

Two kinds of model share the registry. An image classifier (kind "image_classifier", manifest
schema 1 or 2, what `make train` and `make convert` publish) takes 0..255 pixels and images and
answers labels. A generic model (kind "generic", schema 3) is whatever its signatures say: the
publisher reads them from the model itself, and nothing else is assumed (no pixel range, no
image preparation, no accuracy). Its manifest, every field required unless marked optional:

    schema_version    3
    kind              "generic"
    name              the model name (mlcore.registry's rule)
    version           a positive integer
    created_at        "YYYY-MM-DDTHH:MM:SSZ" (UTC)
    framework         {"ai_edge_litert", "numpy", "python"}: versions (or null) of what read it
    source            {"file": the file's base name, "sha256": of its bytes}
    signatures        {KEY: {"inputs": {NAME: TENSOR}, "outputs": {NAME: TENSOR}}}, 1 to 16
    default_signature the signature an empty or absent signature_name means (a key of signatures)
    labels            optional: class names, 1 to 100,000 strings of 1 to 256 characters
    label_output      with labels only: the default signature's output they name (its last
                      dimension has one entry per label)
    files             {"model.tflite": {"sha256": 64 lowercase hex, "size": bytes >= 1}}

    TENSOR = {"name": the graph's tensor name, "shape": [-1 (any size) or 1..2^31-1, at most 8],
              "dtype": float32|float16|int8|uint8|int16|int32|int64|bool,
              "quantization": {"scale": >= 0 (0: not quantized; > 0 for int8, uint8, int16 only),
                               "zero_point": within the dtype (0 when not quantized)},
              "value_range": optional, inputs only, [low, high] finite, low < high: the real
                             values the input takes (float or quantized inputs; for a quantized
                             input within what its quantization holds)}

Names (signature keys, tensor names) are printable strings of 1 to 256 characters. The
publisher writes, for each quantized input, the range its quantization holds as its
value_range: the function refuses values outside it instead of clipping them. `parse` refuses a
document whole, with a ValueError naming the field, for anything else (an unknown field among
them): registry documents are hostile until read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlcore.registry import MODEL_FILE, check_model_name
from mlcore.signatures import Signature, fields, name, parse_signatures

SCHEMA = 3
KIND = "generic"
IMAGE_CLASSIFIER = "image_classifier"
KINDS = (IMAGE_CLASSIFIER, KIND)
MAX_LABELS = 100_000
MAX_LABEL = 256
MAX_FILE_SIZE = 2**40  # larger than any Lambda could load; a bound for hostile sizes
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
REQUIRED = (
    "schema_version",
    "kind",
    "name",
    "version",
    "created_at",
    "framework",
    "source",
    "signatures",
    "default_signature",
    "files",
)
OPTIONAL = ("labels", "label_output")
FRAMEWORK = ("ai_edge_litert", "numpy", "python")


def kind_of(manifest: Any) -> str:
    """A manifest's model kind: "generic" when it says so, else an image classifier (schemas
    1 and 2 have no kind field)."""
    return KIND if isinstance(manifest, dict) and manifest.get("kind") == KIND else IMAGE_CLASSIFIER


@dataclass(frozen=True)
class GenericManifest:
    name: str
    version: int
    signatures: dict[str, Signature]
    default_signature: str
    labels: tuple[str, ...] | None
    label_output: str | None
    size: int
    sha256: str

    @property
    def default(self) -> Signature:
        return self.signatures[self.default_signature]


def _sha256(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ValueError(f"{where} must be 64 lowercase hexadecimal digits")
    return value


def _labels(
    document: dict[str, Any], signature: Signature
) -> tuple[tuple[str, ...] | None, str | None]:
    if "labels" not in document and "label_output" not in document:
        return None, None
    if "labels" not in document or "label_output" not in document:
        raise ValueError("manifest: labels and label_output come together")
    labels = document["labels"]
    if not isinstance(labels, list) or not 1 <= len(labels) <= MAX_LABELS:
        raise ValueError(f"manifest.labels must be a list of 1 to {MAX_LABELS} strings")
    for label in labels:
        if not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL:
            raise ValueError(f"manifest.labels: each is a string of 1 to {MAX_LABEL} characters")
    output = signature.output(name(document["label_output"], "manifest.label_output"))
    if output is None:
        raise ValueError(
            f"manifest.label_output must be an output of signature '{signature.key}': "
            f"{', '.join(signature.output_names)}"
        )
    if not output.shape or output.shape[-1] != len(labels):
        raise ValueError(
            f"manifest.label_output '{output.key}' has shape {list(output.shape)}; its last "
            f"dimension must have one entry per label ({len(labels)})"
        )
    return tuple(labels), output.key


def parse(document: Any) -> GenericManifest:
    """A generic model's manifest, checked whole (the module docstring lists the fields)."""
    doc = fields(document, "manifest", REQUIRED, OPTIONAL)
    if doc["schema_version"] != SCHEMA or isinstance(doc["schema_version"], bool):
        raise ValueError(f"manifest.schema_version must be {SCHEMA} for a generic model")
    if doc["kind"] != KIND:
        raise ValueError(f"manifest.kind must be '{KIND}' (schema {SCHEMA})")
    try:
        model_name = check_model_name(doc["name"])
    except ValueError as exc:
        raise ValueError(f"manifest.name: {exc}") from None
    version = doc["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version <= 0:
        raise ValueError("manifest.version must be a positive integer")
    if not isinstance(doc["created_at"], str) or not _TIMESTAMP.match(doc["created_at"]):
        raise ValueError("manifest.created_at must be YYYY-MM-DDTHH:MM:SSZ")
    framework = fields(doc["framework"], "manifest.framework", FRAMEWORK)
    for key in FRAMEWORK:
        if framework[key] is not None:
            name(framework[key], f"manifest.framework.{key}")
    source = fields(doc["source"], "manifest.source", ("file", "sha256"))
    name(source["file"], "manifest.source.file")
    _sha256(source["sha256"], "manifest.source.sha256")
    signatures = parse_signatures(doc["signatures"], "manifest.signatures")
    default = doc["default_signature"]
    if default not in signatures:
        raise ValueError(
            f"manifest.default_signature must be one of the signatures: {', '.join(signatures)}"
        )
    labels, label_output = _labels(doc, signatures[default])
    files = fields(doc["files"], "manifest.files", (MODEL_FILE,))
    entry = fields(files[MODEL_FILE], f"manifest.files.{MODEL_FILE}", ("sha256", "size"))
    sha256 = _sha256(entry["sha256"], f"manifest.files.{MODEL_FILE}.sha256")
    size = entry["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FILE_SIZE:
        raise ValueError(f"manifest.files.{MODEL_FILE}.size must be an integer from 1 to 2^40")
    return GenericManifest(
        model_name, version, signatures, default, labels, label_output, size, sha256
    )


def build(
    *,
    name: str,
    version: int,
    created_at: str,
    framework: dict[str, str | None],
    source: dict[str, str],
    signatures: dict[str, Signature],
    default_signature: str,
    files: dict[str, Any],
    labels: list[str] | None = None,
    label_output: str | None = None,
) -> dict[str, Any]:
    """The manifest document (parse() reads it back); the publisher's one way to write it."""
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA,
        "kind": KIND,
        "name": name,
        "version": version,
        "created_at": created_at,
        "framework": {k: framework.get(k) for k in FRAMEWORK},
        "source": source,
        "signatures": {k: s.manifest() for k, s in signatures.items()},
        "default_signature": default_signature,
    }
    if labels is not None:
        manifest["labels"] = list(labels)
        manifest["label_output"] = label_output
    manifest["files"] = files
    parse(manifest)  # nothing the function would refuse is ever written
    return manifest
