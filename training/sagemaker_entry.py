"""SageMaker script-mode entry point: the training job (training.pipeline) as a SageMaker
training job runs it, `python training/sagemaker_entry.py --epochs 5 ...`.

What SageMaker hands a script (the TensorFlow containers' training toolkit with SDK v2's
estimator, and SDK v3's ModelTrainer drivers, set the same variables):

- ``SM_CHANNEL_TRAINING``: the ``training`` channel's folder. It holds a dataset in any form
  DATASET accepts: a folder of class subfolders of images (optionally train/ val/ test/), a
  folder of MNIST IDX files, or one ``.npz`` file.
- ``SM_CHANNEL_TEST`` (optional): a ``test`` channel, the held-out test set (classes matched by
  name); without it the test split is held out from the training channel.
- ``SM_CHANNEL_WEIGHTS`` (optional): a ``weights`` channel holding one ``.h5`` file, a backbone's
  starting weights (WEIGHTS=<file>); ``imagenet`` needs no channel (Keras downloads the weights
  in the job).
- ``SM_HPS``: the hyperparameters as JSON. SageMaker also passes them as arguments
  (``--epochs 5``), read with ``parse_known_args`` (unknown ones are ignored); an argument wins
  over SM_HPS. Their names are TrainConfig's fields (training/config.py), with ``_`` or ``-``:
  epochs, architecture, batch_size, distribute, quantize, ...
- ``SM_MODEL_DIR``: where the artifact's files go, flat (``model.tflite``, ``manifest.json``,
  ``model.keras``, ``report.html``); SageMaker uploads the folder as
  ``model.tar.gz``, which ``make publish ARTIFACT=model.tar.gz`` publishes.
- ``--model_dir``: the S3 checkpoint location SDK v2's TensorFlow estimator passes to every
  script; accepted and not used (the artifact is small and written once, at the end).
- ``SM_HOSTS``/``SM_CURRENT_HOST``: with ``distribute=multi-worker`` and no TF_CONFIG (SDK v2's
  estimator sets one when its ``multi_worker_mirrored_strategy`` distribution is enabled; v3's
  ModelTrainer does not), TF_CONFIG is made from them: every host a worker on TF_PORT, the
  first (``algo-1``) the chief, which alone writes SM_MODEL_DIR.

On failure the message also goes to ``SM_OUTPUT_DIR/failure``, which SageMaker shows as the
job's FailureReason. Exit codes are the CLI's (2: bad input, 3: the model failed its gate; its
files are written all the same, with the verdict in the manifest, and `make publish` refuses them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script (SageMaker: python training/sagemaker_entry.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.cli import add_config_arguments, config_from  # noqa: E402
from training.config import TrainConfig  # noqa: E402

TF_PORT = 2222  # multi-worker: the port each worker listens on when TF_CONFIG is made here


def channel_dataset(folder: str | None) -> str | None:
    """A channel's folder -> DATASET: its one .npz file if that is all it holds, else the
    folder itself (image folders, IDX files)."""
    if not folder:
        return None
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"channel folder {path} does not exist")
    files = [p for p in path.iterdir() if not p.name.startswith(".")]
    if len(files) == 1 and files[0].is_file() and files[0].suffix == ".npz":
        return str(files[0])
    return str(path)


def channel_weights(folder: str | None) -> str | None:
    """The weights channel's folder -> WEIGHTS: the one .h5 file it holds."""
    if not folder:
        return None
    files = sorted(p for p in Path(folder).glob("*.h5") if p.is_file())
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise ValueError(f"the weights channel ({folder}) must hold one .h5 file; found {found}")
    return str(files[0])


def tf_config_from_hosts(hosts: list[str], current_host: str, port: int = TF_PORT) -> str:
    """TF_CONFIG for MultiWorkerMirroredStrategy: every host a worker, in SageMaker's order
    (sorted: algo-1 first), this host's index its task."""
    hosts = sorted(hosts)
    if current_host not in hosts:
        raise ValueError(f"SM_CURRENT_HOST {current_host!r} is not in SM_HOSTS {hosts}")
    return json.dumps(
        {
            "cluster": {"worker": [f"{host}:{port}" for host in hosts]},
            "task": {"type": "worker", "index": hosts.index(current_host)},
        }
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagemaker_entry.py",
        description="The training job as a SageMaker script-mode entry point.",
        allow_abbrev=False,  # an unknown hyperparameter must not pass for a known one's prefix
    )
    add_config_arguments(parser, TrainConfig, underscores=True)
    parser.add_argument("--model_dir", "--model-dir", help="SDK v2's checkpoint URI (unused)")
    return parser


def hyperparameter_arguments(hps: dict) -> list[str]:
    """SM_HPS -> arguments, so that both sources are parsed (and checked) the same way."""
    return [item for key, value in hps.items() for item in (f"--{key}", str(value))]


def config_from_environment(argv: list[str], env: dict[str, str]) -> TrainConfig:
    """TrainConfig from the hyperparameters (SM_HPS, then the arguments) and the channels."""
    hps = json.loads(env.get("SM_HPS") or "{}")
    args, _unknown = parser().parse_known_args([*hyperparameter_arguments(hps), *argv])
    args.dataset = channel_dataset(env.get("SM_CHANNEL_TRAINING")) or args.dataset
    args.test_dataset = channel_dataset(env.get("SM_CHANNEL_TEST")) or args.test_dataset
    args.weights = channel_weights(env.get("SM_CHANNEL_WEIGHTS")) or args.weights
    return config_from(args, TrainConfig)


def write_flat(artifact_dir: Path, model_dir: Path) -> list[str]:
    """The artifact's files, flat into SM_MODEL_DIR (what SageMaker tars as model.tar.gz)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted(artifact_dir.iterdir()):
        if path.is_file():
            shutil.copy2(path, model_dir / path.name)
            names.append(path.name)
    return names


def run(argv: list[str], env: dict[str, str]) -> int:
    from training.cli import GATE_FAILED
    from training.data import DatasetError
    from training.pipeline import refused, run_training, summary

    try:
        config = config_from_environment(argv, env)
        if config.distribute == "multi-worker" and not env.get("TF_CONFIG"):
            hosts = json.loads(env.get("SM_HOSTS") or "[]")
            if len(hosts) > 1:
                os.environ["TF_CONFIG"] = tf_config_from_hosts(hosts, env["SM_CURRENT_HOST"])
        model_dir = Path(env.get("SM_MODEL_DIR") or "/opt/ml/model")
        with tempfile.TemporaryDirectory() as tmp:
            result = run_training(dataclasses.replace(config, artifacts=Path(tmp)))
            if result is None:
                print("worker done: trained; the chief writes the artifact")
                return 0
            written = write_flat(result.artifact_dir, model_dir)
            refusal = refused(result, trained=True)
        print(summary(result).replace(str(result.artifact_dir), str(model_dir)))
        print(f"wrote {', '.join(written)} to {model_dir}")
        # the artifact is written either way (its manifest records the verdict, and
        # `make publish` refuses a failed one); the job fails so that the failure is seen
        return fail(env, refusal, GATE_FAILED) if refusal else 0
    except (ValueError, DatasetError, FileExistsError, FileNotFoundError) as exc:
        return fail(env, str(exc), 2)


def fail(env: dict[str, str], message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    if env.get("SM_OUTPUT_DIR"):
        failure = Path(env["SM_OUTPUT_DIR"]) / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(message + "\n")
    return code


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(run(sys.argv[1:], dict(os.environ)))
