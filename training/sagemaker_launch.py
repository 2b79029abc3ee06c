"""`make train-sagemaker`: the training job as a SageMaker training job, launched with the
SageMaker Python SDK v3 (``ModelTrainer``), from its own environment (`make setup-sagemaker`).

    make train-sagemaker DATASET=s3://BUCKET/digits/ [TEST_DATASET=s3://...] ROLE=arn:aws:iam::...
                         [EPOCHS=5 ARCH=cnn ... INSTANCES=2 DISTRIBUTE=multi-worker]

DATASET (an s3:// folder or .npz) becomes the ``training`` channel, TEST_DATASET the
``test`` channel and a WEIGHTS file (an s3:// URI of a .weights.h5) the ``weights`` channel;
every other training flag becomes a hyperparameter, which the entry point
(training/sagemaker_entry.py) reads as the CLI would. The job runs on SageMaker's TensorFlow
training image (FRAMEWORK_VERSION, Python 3.12) with this project's own training pins
installed over it (staged requirements.txt), so the artifact is made by the versions the
manifest records. When it ends, SageMaker has uploaded the artifact as model.tar.gz:

    aws s3 cp s3://.../output/model.tar.gz . && make publish ARTIFACT=model.tar.gz

Why SDK v3: it is the maintained major version on PyPI (3.x; 2.x only gets fixes), and v3
replaced the framework estimators (v2's ``sagemaker.tensorflow.TensorFlow``) with one
``ModelTrainer`` for any image. The entry point works under both: it accepts v2's
``--model_dir`` and, since v3 sets no TF_CONFIG, builds one from SM_HOSTS for multi-worker runs.

Only the standard library is imported at module level, so the staging and the job's description
(`job_spec`) run and are tested without the SDK; `launch` alone needs it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY_SCRIPT = "training/sagemaker_entry.py"
PACKAGES = ("training", "mlcore")  # what the entry point imports from this repository
# The project's pins the job installs over the TensorFlow image. `tensorflow`, not the
# project's `tensorflow-cpu`: it upgrades the image's own TensorFlow in place (same import).
JOB_REQUIREMENTS = ("tensorflow-cpu", "keras", "ai-edge-litert", "numpy", "pillow", "matplotlib")
DEFAULT_FRAMEWORK_VERSION = "2.19"  # the newest TensorFlow training image the SDK knows
CHANNEL_FLAGS = {"dataset": "training", "test-dataset": "test"}
# WEIGHTS: imagenet and none are hyperparameters (the job downloads ImageNet's itself); a
# weights file must be in S3 and becomes the `weights` channel, whose file the entry point uses.
WEIGHTS_CHANNEL = "weights"
LOCAL_ONLY_FLAGS = ("artifacts",)  # meaningless inside the job


def job_requirements(lock: Path = ROOT / "requirements.txt") -> list[str]:
    """The exact versions of JOB_REQUIREMENTS from the project's lock file."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)  # PEP 503
    missing = [name for name in JOB_REQUIREMENTS if name not in pins]
    if missing:
        raise ValueError(f"{lock}: no pinned version of {', '.join(missing)}")
    return [
        f"{'tensorflow' if name == 'tensorflow-cpu' else name}=={pins[name]}"
        for name in JOB_REQUIREMENTS
    ]


def stage_source(into: Path) -> Path:
    """The job's source folder: the packages the entry point imports and requirements.txt."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    (into / "requirements.txt").write_text("\n".join(job_requirements()) + "\n")
    return into


def split_flags(training_flags: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """`--key=value` training flags (the Makefile's TRAIN_FLAGS) -> (channels, hyperparameters)."""
    channels, hyperparameters = {}, {}
    for flag in training_flags:
        if not flag.startswith("--") or "=" not in flag:
            raise ValueError(f"training flag {flag!r}: expected --name=value")
        key, value = flag[2:].split("=", 1)
        if key == "weights" and (value.startswith("s3://") or value.endswith(".h5")):
            if not value.startswith("s3://"):
                raise ValueError(
                    f"--weights={value}: a weights file for SageMaker must be an s3:// URI (it "
                    "becomes the weights channel); or imagenet, or none"
                )
            channels[WEIGHTS_CHANNEL] = value
        elif key in CHANNEL_FLAGS:
            if not value.startswith("s3://"):
                raise ValueError(f"--{key}={value}: a SageMaker channel must be an s3:// URI")
            channels[CHANNEL_FLAGS[key]] = value
        elif key not in LOCAL_ONLY_FLAGS:
            hyperparameters[key.replace("-", "_")] = value
    if "training" not in channels:
        raise ValueError(
            "DATASET must be the s3:// URI of the training data (the training channel)"
        )
    return channels, hyperparameters


def job_spec(args: argparse.Namespace, training_flags: list[str], source_dir: Path) -> dict:
    """What `launch` asks SageMaker for, as plain data."""
    channels, hyperparameters = split_flags(training_flags)
    if args.instances > 1 and hyperparameters.get("distribute") != "multi-worker":
        raise ValueError(f"INSTANCES={args.instances} needs DISTRIBUTE=multi-worker")
    return {
        "base_job_name": f"{hyperparameters.get('name', 'mnist')}-train",
        "role": args.role,
        "framework_version": args.framework_version,
        "instance_type": args.instance_type,
        "instance_count": args.instances,
        "source_dir": str(source_dir),
        "entry_script": ENTRY_SCRIPT,
        "requirements": "requirements.txt",
        "hyperparameters": hyperparameters,
        "channels": channels,
        "output_path": args.output,
    }


def launch(spec: dict, wait: bool = True) -> str | None:
    """Start the training job (SDK v3); returns the S3 URI of its model.tar.gz when waited."""
    from sagemaker.core import image_uris
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, SourceCode
    from sagemaker.train import ModelTrainer

    session = Session()
    image = image_uris.retrieve(
        "tensorflow",
        region=session.boto_region_name,
        version=spec["framework_version"],
        py_version="py312",
        instance_type=spec["instance_type"],
        image_scope="training",
    )
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=spec["role"],
        base_job_name=spec["base_job_name"],
        training_image=image,
        source_code=SourceCode(
            source_dir=spec["source_dir"],
            entry_script=spec["entry_script"],
            requirements=spec["requirements"],
        ),
        compute=Compute(instance_type=spec["instance_type"], instance_count=spec["instance_count"]),
        hyperparameters=spec["hyperparameters"],
        **(
            {"output_data_config": OutputDataConfig(s3_output_path=spec["output_path"])}
            if spec["output_path"]
            else {}
        ),
    )
    trainer.train(
        input_data_config=[
            InputData(channel_name=name, data_source=uri) for name, uri in spec["channels"].items()
        ],
        wait=wait,
        logs=wait,
    )
    job = trainer._latest_training_job  # the SDK's own handle on the job it started
    return job.model_artifacts.s3_model_artifacts if wait and job.model_artifacts else None


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.sagemaker_launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # the training flags pass through: none may pass for one of these
    )
    parser.add_argument("--role", help="IAM role SageMaker assumes (default: the SDK's lookup)")
    parser.add_argument("--instance-type", default="ml.m5.xlarge")
    parser.add_argument("--instances", type=int, default=1, help="instances (multi-worker: > 1)")
    parser.add_argument("--framework-version", default=DEFAULT_FRAMEWORK_VERSION)
    parser.add_argument("--output", help="s3:// prefix for model.tar.gz (default: the SDK's)")
    parser.add_argument("--no-wait", action="store_true", help="start the job and return")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the job it would start, start nothing"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args, training_flags = parser().parse_known_args(argv)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = job_spec(args, training_flags, stage_source(Path(tmp)))
            if args.dry_run:
                import json

                print(json.dumps(spec, indent=2))
                return 0
            model = launch(spec, wait=not args.no_wait)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if model:
        print(
            f"model artifact: {model}\npublish it: aws s3 cp {model} . && "
            "make publish ARTIFACT=model.tar.gz"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
