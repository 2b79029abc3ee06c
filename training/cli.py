"""Thin CLI over the training library: parses arguments, does I/O, prints, sets the exit code.

python -m training train   [--epochs 5 --quantize int8 ... --publish --bucket B --prefix P]
python -m training publish [--version V] --bucket B --prefix P
python -m training fixture --out tests/fixtures/mnist
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from training.config import ARCHITECTURES, DATASETS, QUANTIZE_MODES, TrainConfig

FIXTURE_VERSION = 1764300000


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="mnist", help="model name (default: mnist)")
    parser.add_argument("--bucket", default="serverless-ml-models", help="S3 bucket")
    parser.add_argument("--prefix", default="models", help="key prefix in the bucket")
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=Path("artifacts"),
        help="local artifact folder (default: artifacts)",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, quantize, verify; optionally publish")
    add_registry_arguments(train)
    train.add_argument("--dataset", choices=DATASETS, default="mnist-sample")
    train.add_argument(
        "--data-path",
        help="mnist: a local mnist.npz, a folder of IDX files, "
        "or s3://BUCKET/KEY.npz (default: Keras' download and cache)",
    )
    train.add_argument("--architecture", choices=ARCHITECTURES, default="mlp")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--limit", type=int, help="train on at most N examples (quick runs)")
    # No `choices=` here: an unknown mode reaches TrainConfig, whose error names the allowed ones.
    train.add_argument("--quantize", default="int8", help=f"one of {', '.join(QUANTIZE_MODES)}")
    train.add_argument(
        "--calibration-size",
        type=int,
        default=500,
        help="representative examples for int8 calibration (default: 500)",
    )
    train.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=1.0,
        help="percentage points the converted model may lose (default: 1.0)",
    )
    train.add_argument("--version", type=int, help="default: UTC epoch seconds")
    train.add_argument("--publish", action="store_true", help="publish after training")

    publish = commands.add_parser("publish", help="publish an artifact to S3")
    add_registry_arguments(publish)
    publish.add_argument("--version", type=int, help="default: the newest artifact")

    fixture = commands.add_parser("fixture", help="remake the committed test model")
    fixture.add_argument("--out", type=Path, default=Path("tests/fixtures/mnist"))
    fixture.add_argument("--digits", type=int, default=500)
    return root


def config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        name=args.name,
        dataset=args.dataset,
        data_path=args.data_path,
        architecture=args.architecture,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        limit=args.limit,
        quantize=args.quantize,
        calibration_size=args.calibration_size,
        max_accuracy_drop=args.max_accuracy_drop,
        artifacts=args.artifacts,
        version=args.version,
    )


def do_publish(artifact_dir: Path, bucket: str, prefix: str) -> None:
    from training.publish import publish

    uris = publish(artifact_dir, bucket, prefix)
    print(f"published {uris['model']}\n          {uris['manifest']}")
    print(
        f"pointer   {uris['pointer']}"
        if uris["pointer"]
        else "pointer   unchanged (a newer version is already latest)"
    )


def main(argv: list[str] | None = None) -> int:
    from training.data import DatasetError
    from training.evaluate import AccuracyGateError
    from training.publish import PublishError, newest_artifact

    args = parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        if args.command == "train":
            from training.pipeline import run_training, summary

            result = run_training(config_from(args))
            print(summary(result))
            if args.publish:
                do_publish(result.artifact_dir, args.bucket, args.prefix)
        elif args.command == "publish":
            artifact_dir = (
                args.artifacts / args.name / str(args.version)
                if args.version
                else newest_artifact(args.artifacts, args.name)
            )
            if not artifact_dir.is_dir():
                raise PublishError(f"no artifact at {artifact_dir}")
            do_publish(artifact_dir, args.bucket, args.prefix)
        else:
            import tempfile

            from training.pipeline import run_training, summary, write_fixture

            with tempfile.TemporaryDirectory() as tmp:
                config = TrainConfig(version=FIXTURE_VERSION, artifacts=Path(tmp))
                result = run_training(config)
                write_fixture(result, config, args.out, args.digits)
            print(summary(result).replace(str(result.artifact_dir), str(args.out)))
    except AccuracyGateError as exc:
        print(f"error: accuracy gate failed, nothing published: {exc}", file=sys.stderr)
        return 3
    except (ValueError, DatasetError, PublishError, FileExistsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
