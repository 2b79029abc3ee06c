"""manifest.json: everything a reader needs to trust and use a published model."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mlcore.registry import MANIFEST_FILE, MANIFEST_SCHEMA, MODEL_FILE

KERAS_FILE = "model.keras"
REPORT_FILE = "report.html"  # training/report.py; beside the model, not published


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def framework_versions() -> dict[str, str | None]:
    return {
        "tensorflow": package_version("tensorflow-cpu") or package_version("tensorflow"),
        "keras": package_version("keras"),
        "ai_edge_litert": package_version("ai-edge-litert"),
        "numpy": package_version("numpy"),
        "python": platform.python_version(),
    }


def file_entry(content: bytes) -> dict:
    return {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}


def utc_timestamp(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_manifest(
    *,
    name: str,
    version: int,
    created_at: float,
    dataset: dict,
    model: dict,
    input_spec: dict,
    output_spec: dict,
    labels: list[str],
    quantization: dict,
    evaluation: dict,
    sizes: dict,
    training: dict | None = None,
    baseline: dict | None = None,
    model_content: bytes,
) -> dict:
    """`baseline`: what the served model is watched against (mlcore.stats documents it)."""
    return {
        "schema_version": MANIFEST_SCHEMA,
        "name": name,
        "version": version,
        "created_at": utc_timestamp(created_at),
        "framework": framework_versions(),
        "dataset": dataset,
        "model": model,
        "input": input_spec,
        "output": {**output_spec, "kind": "probabilities"},
        "labels": labels,
        "quantization": quantization,
        "evaluation": evaluation,
        "training": training or {},
        "baseline": baseline or {},
        "sizes": sizes,
        "files": {MODEL_FILE: file_entry(model_content)},
    }


def dumps(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


def read_manifest(artifact_dir: Path) -> dict:
    path = artifact_dir / MANIFEST_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: no manifest (is this a training artifact?)") from exc


def verify_files(artifact_dir: Path, manifest: dict) -> dict[str, bytes]:
    """Each file the manifest lists, read and checked against its size and sha256."""
    contents = {}
    for filename, expected in manifest["files"].items():
        content = (artifact_dir / filename).read_bytes()
        if file_entry(content) != {"sha256": expected["sha256"], "size": expected["size"]}:
            raise ValueError(
                f"{artifact_dir / filename}: does not match its manifest "
                f"(sha256 {expected['sha256'][:12]}..., {expected['size']} bytes)"
            )
        contents[filename] = content
    return contents
