"""make publish MODEL=...tflite: a model trained anywhere becomes an artifact whose manifest is
read from the model itself (training/tflite_model.py; LiteRT, no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcore import generic
from tests.function_support import GENERIC_DIR
from training import cli
from training.tflite_model import make_artifact


def test_an_artifact_of_any_tflite_model(tmp_path):
    folder = make_artifact(
        GENERIC_DIR / "pair-int8.tflite", "pair", tmp_path, 7, GENERIC_DIR / "labels.txt"
    )
    assert folder == tmp_path / "pair" / "7"
    assert (folder / "model.tflite").read_bytes() == (GENERIC_DIR / "pair-int8.tflite").read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    parsed = generic.parse(manifest)
    assert (parsed.version, parsed.label_output, parsed.labels[0]) == (7, "classes", "north")
    assert manifest["source"]["file"] == "pair-int8.tflite"
    inputs = manifest["signatures"]["serving_default"]["inputs"]
    assert inputs["features"]["dtype"] == "int8" and inputs["features"]["shape"] == [-1, 6]
    assert "value_range" in inputs["features"]  # what its quantization holds


def test_the_version_defaults_to_the_time(tmp_path):
    folder = make_artifact(GENERIC_DIR / "mixed.tflite", "mixed", tmp_path, clock=lambda: 1.8e9)
    assert folder.name == "1800000000"


@pytest.mark.parametrize(
    ("model", "labels", "message"),
    [
        ("not-a-model.tflite", None, "LiteRT cannot load it"),
        ("missing.tflite", None, "no such file"),
        (
            "pair-int8.tflite",
            "three-labels.txt",
            "found none among: classes [-1, 4], score [-1, 1]",
        ),
        ("pair-int8.tflite", "empty.txt", "no labels"),
    ],
)
def test_what_cannot_be_served_is_refused_naming_what_was_found(tmp_path, model, labels, message):
    (tmp_path / "not-a-model.tflite").write_bytes(b"TFL3 but not really a flatbuffer")
    (tmp_path / "three-labels.txt").write_text("a\nb\nc\n")
    (tmp_path / "empty.txt").write_text("\n\n")
    source = tmp_path / model if model != "pair-int8.tflite" else GENERIC_DIR / model
    with pytest.raises((ValueError, FileNotFoundError)) as raised:
        make_artifact(source, "m", tmp_path / "out", 1, tmp_path / labels if labels else None)
    assert message in str(raised.value)


def test_an_existing_version_is_not_overwritten(tmp_path):
    make_artifact(GENERIC_DIR / "mixed.tflite", "mixed", tmp_path, 5)
    with pytest.raises(FileExistsError):
        make_artifact(GENERIC_DIR / "mixed.tflite", "mixed", tmp_path, 5)


def test_publish_with_model_names_it_after_its_file_never_the_default_model(tmp_path, monkeypatch):
    published = []
    monkeypatch.setattr(cli, "do_publish", lambda artifact, *a, **k: published.append(artifact))
    code = cli.main(
        [
            "publish",
            "--model",
            str(GENERIC_DIR / "legacy.tflite"),
            "--artifacts",
            str(tmp_path),
            "--version",
            "9",
            "--bucket",
            "b",
        ]
    )
    assert code == 0 and published == [tmp_path / "legacy" / "9"]
    assert cli.main(["publish", "--labels", "x.txt", "--bucket", "b"]) == 2  # labels need a model


def test_the_make_variables_reach_the_command():
    from local.make_variables import read_variables

    makefile = (Path(__file__).resolve().parents[3] / "Makefile").read_text()
    assert "model=MODEL labels=LABELS" in makefile
    assert {"MODEL", "LABELS"} <= {v.name for v in read_variables()}  # variables.mk's list
