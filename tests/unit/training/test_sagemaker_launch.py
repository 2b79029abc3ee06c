"""make train-sagemaker without AWS: what it stages and asks SageMaker for (`launch` itself,
which needs the SDK and an account, is not run here)."""

import json
import subprocess
import sys
from argparse import Namespace

import pytest

from training import sagemaker_launch
from training.sagemaker_launch import job_spec, split_flags, stage_source


def test_the_job_installs_the_projects_own_training_pins(tmp_path):
    lock = (sagemaker_launch.ROOT / "requirements.txt").read_text().replace("_", "-")
    staged = stage_source(tmp_path)
    requirements = (staged / "requirements.txt").read_text().split()
    names = [r.split("==")[0] for r in requirements]
    assert names == ["tensorflow", "keras", "ai-edge-litert", "numpy", "pillow", "matplotlib"]
    for requirement in requirements:
        name, version = requirement.split("==")
        pinned = "tensorflow-cpu" if name == "tensorflow" else name
        assert f"{pinned}=={version}\n" in lock


def test_the_staged_source_runs_as_sagemaker_runs_it(tmp_path):
    staged = stage_source(tmp_path / "code")
    assert (staged / sagemaker_launch.ENTRY_SCRIPT).is_file()
    assert not list(staged.rglob("__pycache__"))
    # SageMaker runs `python training/sagemaker_entry.py ...` in the source folder
    done = subprocess.run(
        [sys.executable, sagemaker_launch.ENTRY_SCRIPT, "--help"],
        cwd=staged,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--batch-size" in done.stdout and "--batch_size" in done.stdout
    assert "--model_dir" in done.stdout


def test_dataset_flags_become_channels_and_the_others_hyperparameters():
    flags = [
        "--dataset=s3://bucket/digits/",
        "--test-dataset=s3://bucket/test.npz",
        "--epochs=7",
        "--batch-size=32",
        "--artifacts=artifacts",
    ]
    channels, hyperparameters = split_flags(flags)
    assert channels == {"training": "s3://bucket/digits/", "test": "s3://bucket/test.npz"}
    assert hyperparameters == {"epochs": "7", "batch_size": "32"}
    with pytest.raises(ValueError, match="must be an s3:// URI"):
        split_flags(["--dataset=mnist-sample"])
    with pytest.raises(ValueError, match="DATASET must be the s3:// URI"):
        split_flags(["--epochs=3"])


def test_a_weights_file_in_s3_becomes_the_weights_channel_and_a_local_one_is_refused():
    data = "--dataset=s3://bucket/folder/"
    channels, hyperparameters = split_flags([data, "--weights=s3://bucket/m.weights.h5"])
    assert channels["weights"] == "s3://bucket/m.weights.h5" and "weights" not in hyperparameters
    _, hyperparameters = split_flags([data, "--weights=imagenet"])  # downloaded in the job
    assert hyperparameters == {"weights": "imagenet"}
    with pytest.raises(ValueError, match="must be an s3:// URI .* or imagenet, or none"):
        split_flags([data, "--weights=/home/me/m.weights.h5"])


def test_several_instances_need_multi_worker(tmp_path):
    args = Namespace(
        role="arn:aws:iam::123456789012:role/sm",
        framework_version="2.19",
        instance_type="ml.m5.xlarge",
        instances=2,
        output=None,
    )
    with pytest.raises(ValueError, match="needs DISTRIBUTE=multi-worker"):
        job_spec(args, ["--dataset=s3://b/d/"], tmp_path)
    spec = job_spec(args, ["--dataset=s3://b/d/", "--distribute=multi-worker"], tmp_path)
    assert spec["instance_count"] == 2 and spec["hyperparameters"]["distribute"] == "multi-worker"
    assert spec["entry_script"] == "training/sagemaker_entry.py"


def test_dry_run_prints_the_job_and_starts_nothing(capsys):
    code = sagemaker_launch.main(["--dry-run", "--dataset=s3://b/digits.npz", "--epochs=2"])
    assert code == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["channels"] == {"training": "s3://b/digits.npz"}
    assert spec["hyperparameters"] == {"epochs": "2"} and spec["base_job_name"] == "mnist-train"
    assert sagemaker_launch.main(["--dry-run", "--epochs=2"]) == 2
