import hashlib
import json

import pytest

from training.manifest import build_manifest, dumps, verify_files

CONTRACT_FIELDS = {
    "schema_version",
    "name",
    "version",
    "created_at",
    "framework",
    "dataset",
    "model",
    "input",
    "output",
    "labels",
    "quantization",
    "evaluation",
    "sizes",
    "files",
}


def manifest_for(content: bytes) -> dict:
    spec = {
        "name": "x",
        "shape": [-1, 28, 28],
        "dtype": "int8",
        "quantization": {"scale": 1.0, "zero_point": -128},
    }
    return build_manifest(
        name="mnist",
        version=1764300000,
        created_at=1764300000.5,
        dataset={"name": "mnist-sample", "sha256": "ab", "sizes": {"train": 1}},
        model={"architecture": "mlp"},
        input_spec={**spec, "value_range": [0.0, 255.0]},
        output_spec=spec,
        labels=[str(i) for i in range(10)],
        quantization={"mode": "int8", "calibration_size": 8},
        evaluation={"float_accuracy": 0.9, "quantized_accuracy": 0.9},
        sizes={"float32_tflite_bytes": 4, "tflite_bytes": len(content)},
        model_content=content,
    )


def test_manifest_has_every_contract_field_and_the_file_checksum():
    manifest = manifest_for(b"model-bytes")
    assert CONTRACT_FIELDS <= manifest.keys()
    assert manifest["created_at"] == "2025-11-28T03:20:00Z"
    assert manifest["files"]["model.tflite"] == {
        "sha256": hashlib.sha256(b"model-bytes").hexdigest(),
        "size": 11,
    }
    assert manifest["framework"]["tensorflow"] and manifest["framework"]["ai_edge_litert"]
    assert json.loads(dumps(manifest)) == manifest


def test_verify_files_refuses_bytes_that_do_not_match(tmp_path):
    manifest = manifest_for(b"model-bytes")
    (tmp_path / "model.tflite").write_bytes(b"model-bytes")
    assert verify_files(tmp_path, manifest) == {"model.tflite": b"model-bytes"}
    (tmp_path / "model.tflite").write_bytes(b"model-bytez")
    with pytest.raises(ValueError, match="does not match its manifest"):
        verify_files(tmp_path, manifest)
