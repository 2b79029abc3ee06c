"""make demo reuses the newest model only when it was trained on this very dataset (same
DATASET, same files) and passed its gate; otherwise it says why and trains anew."""

import json
import shutil

from local.demo import why_not_reuse
from tests.conftest import FIXTURE_DIR
from training.synthetic import make_folder


def artifact_from(folder, manifest: dict):
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE_DIR / "model.tflite", folder / "model.tflite")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def fixture_manifest() -> dict:
    return json.loads((FIXTURE_DIR / "manifest.json").read_text())


def test_the_fixture_trained_on_the_sample_is_reused_for_the_sample(tmp_path):
    artifact = artifact_from(tmp_path / "a", fixture_manifest())
    assert why_not_reuse(artifact, "mnist-sample") is None


def test_a_model_of_other_data_is_not_reused(tmp_path):
    artifact = artifact_from(tmp_path / "a", fixture_manifest())
    assert "was trained on mnist-sample" in why_not_reuse(artifact, "path/to/letters")


def test_a_folder_whose_files_changed_since_is_other_data(tmp_path):
    from training.data import load_dataset

    folder = make_folder("shapes", tmp_path / "shapes", per_class=3)
    manifest = fixture_manifest()
    manifest["dataset"] |= {"name": str(folder), "sha256": load_dataset(str(folder)).sha256}
    artifact = artifact_from(tmp_path / "a", manifest)
    assert why_not_reuse(artifact, str(folder)) is None
    make_folder("shapes", folder, per_class=4)  # one more image per class
    assert "changed since" in why_not_reuse(artifact, str(folder))


def test_a_model_that_failed_its_gate_is_not_reused_even_if_forced(tmp_path):
    manifest = fixture_manifest()
    gate = {"passed": False, "forced": True, "checks": []}
    manifest["evaluation"] = manifest["evaluation"] | {"gate": gate}
    artifact = artifact_from(tmp_path / "a", manifest)
    assert "failed its gate" in why_not_reuse(artifact, "mnist-sample")
