"""A .tflite model trained anywhere -> an artifact folder the publisher takes (`make publish
MODEL=path/to/model.tflite [LABELS=labels.txt]`).

The manifest (mlcore.generic, kind "generic") is read from the model itself: LiteRT loads it
and runs its default signature once on zeros, then every signature's inputs and outputs (names,
dtypes, shapes with their dynamic dimensions, quantization) are written down. What cannot be
served is refused with what was found. No TensorFlow: LiteRT and numpy only.
"""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

from mlcore import generic
from mlcore.registry import MANIFEST_FILE, MODEL_FILE, check_model_name, check_version
from mlcore.signatures import Signature, default_signature, read_signatures, zero_inputs
from training.manifest import dumps, file_entry, package_version, utc_timestamp

MAX_MODEL_BYTES = 2**31  # what a Lambda function's /tmp (10 GB) and memory could hold at most


def read_labels(path: Path) -> list[str]:
    """One label per line (blank lines and surrounding spaces ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable UTF-8 text file ({exc})") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ValueError(f"{path}: no labels (one per line)")
    return labels


def label_output(signature: Signature, labels: list[str], source: Path) -> str:
    """The one output of the signature whose last dimension has one entry per label."""
    fitting = [t.key for t in signature.outputs if t.shape and t.shape[-1] == len(labels)]
    if len(fitting) != 1:
        shapes = ", ".join(f"{t.key} {list(t.shape)}" for t in signature.outputs)
        found = "none" if not fitting else f"{len(fitting)} ({', '.join(fitting)})"
        raise ValueError(
            f"{source}: {len(labels)} labels need exactly one output of signature "
            f"'{signature.key}' whose last dimension is {len(labels)}; found {found} among: "
            f"{shapes}"
        )
    return fitting[0]


def inspect(content: bytes, source: Path) -> tuple[dict[str, Signature], str]:
    """The model's signatures and the default one, after LiteRT has loaded it and run the
    default signature once; a ValueError saying what was found otherwise."""
    from ai_edge_litert.interpreter import Interpreter

    from mlcore.predictor import Predictor

    try:
        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{source}: LiteRT cannot load it as a TFLite model ({exc})") from None
    try:
        signatures = read_signatures(interpreter)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    default = default_signature(signatures)
    if default not in signatures:
        raise ValueError(
            f"{source}: no '{default}' signature and several others "
            f"({', '.join(signatures)}): the default one cannot be chosen"
        )
    try:
        Predictor(interpreter).run(signatures[default], zero_inputs(signatures[default]))
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{source}: LiteRT loads it but cannot run it ({exc})") from None
    return signatures, default


def manifest_for(
    content: bytes,
    source: Path,
    name: str,
    version: int,
    created_at: float,
    labels: list[str] | None = None,
) -> dict:
    """A .tflite model's manifest (mlcore.generic), read from the model itself."""
    check_model_name(name)
    signatures, default = inspect(content, source)
    output = label_output(signatures[default], labels, source) if labels else None
    return generic.build(
        name=name,
        version=check_version(version),
        created_at=utc_timestamp(created_at),
        framework={
            "ai_edge_litert": package_version("ai-edge-litert"),
            "numpy": package_version("numpy"),
            "python": platform.python_version(),
        },
        source={"file": source.name, "sha256": hashlib.sha256(content).hexdigest()},
        signatures=signatures,
        default_signature=default,
        files={MODEL_FILE: file_entry(content)},
        labels=labels,
        label_output=output,
    )


def make_artifact(
    model: Path,
    name: str,
    artifacts: Path,
    version: int | None = None,
    labels: Path | None = None,
    clock=time.time,
) -> Path:
    """artifacts/NAME/VERSION/{model.tflite, manifest.json} for a .tflite file; its folder.
    VERSION: the given one, else the current UTC epoch seconds (a version grows with time)."""
    check_model_name(name)
    now = clock()
    if not model.is_file():
        raise FileNotFoundError(f"{model}: no such file (MODEL=path/to/model.tflite)")
    if model.stat().st_size > MAX_MODEL_BYTES:
        raise ValueError(f"{model}: {model.stat().st_size:,} bytes; at most {MAX_MODEL_BYTES:,}")
    content = model.read_bytes()
    label_names = read_labels(labels) if labels is not None else None
    version = version if version is not None else int(now)
    manifest = manifest_for(content, model, name, version, now, label_names)
    folder = artifacts / name / str(manifest["version"])
    if (folder / MANIFEST_FILE).exists():
        raise FileExistsError(f"{folder} exists already: choose another VERSION")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(content)
    (folder / MANIFEST_FILE).write_bytes(dumps(manifest))
    return folder
