"""Thin CLI over the training library: parses arguments, does I/O, prints, sets the exit code.

python -m training train   [--dataset D --architecture A ... --publish --bucket B --prefix P]
python -m training convert --model M.keras --dataset D [--input-range -1,1 | --mean .. --std ..]
python -m training publish [--version V | --artifact FOLDER] --bucket B --prefix P [--canary N]
python -m training publish --model M.tflite [--labels labels.txt] --name N --bucket B --prefix P
python -m training promote --version V | rollback | status  [--name N --bucket B --prefix P]
python -m training report  [--version V | --artifact FOLDER]
python -m training audit   --bucket B --prefix P --name N [--last 10]
python -m training fixture --out tests/fixtures/mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from pathlib import Path

from mlcore.registry import is_decimal
from training.config import ConvertConfig, TrainConfig, parse_flag

GATE_FAILED = 3  # the exit status of a train or convert whose model failed its gate
FIXTURE_VERSION = 1796000000  # tests/fixtures/mnist-schema1 keeps the first fixture, 1764300000


def add_config_arguments(
    parser: argparse.ArgumentParser, config_class: type, underscores: bool = False
) -> None:
    """One --flag per field of a config dataclass, with its help and default from the field.
    Values are checked by the dataclass itself, whose errors name what is allowed.
    underscores: also accept --field_name (SageMaker passes hyperparameters as they are named)."""
    hints = typing.get_type_hints(config_class)
    for item in dataclasses.fields(config_class):
        kind = next((t for t in typing.get_args(hints[item.name]) if t is not type(None)), None)
        kind = kind or hints[item.name]
        shown = "" if item.default is None else f" (default: {item.default})"
        spellings = {
            "--" + item.name.replace("_", "-"),
            *(["--" + item.name] if underscores else []),
        }
        options = {k: v for k, v in item.metadata.items() if k != "help"}  # e.g. a flag's
        parser.add_argument(
            *sorted(spellings),
            dest=item.name,
            default=item.default,
            help=(item.metadata["help"] + shown).replace("%", "%%"),  # argparse formats help
            **({"type": kind} | options),
        )


def add_publish_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", help="S3 bucket of the model registry (required to publish)")
    parser.add_argument(
        "--prefix", default="models", help="key prefix of the registry (default: models)"
    )
    parser.add_argument(
        "--repair-pointer",
        action="store_true",
        help="replace a latest.json that cannot be read with a pointer to this version",
    )
    from training.registry_s3 import LOCK_DAYS, LOCK_MODE, LOCK_MODES

    parser.add_argument(
        "--lock-mode",
        choices=LOCK_MODES,
        default=LOCK_MODE,
        help="S3 Object Lock mode of the version's files (default: %(default)s)",
    )
    parser.add_argument(
        "--lock-days",
        type=int,
        default=LOCK_DAYS,
        help="days the version's files stay locked (default: %(default)s)",
    )
    parser.add_argument(
        "--signing-key",
        default=os.environ.get("MANIFEST_SIGNING_KEY_ARN") or None,
        help="KMS key (ECC_NIST_P256) that signs the version as an OpenSSF Model Signing bundle, "
        "model.sig (default: $MANIFEST_SIGNING_KEY_ARN)",
    )
    parser.add_argument(
        "--signer-profile",
        default=os.environ.get("SIGNER_PROFILE") or None,
        help="AWS profile that signs (one that assumes the stack's SignerRole; default: "
        "$SIGNER_PROFILE, else the credentials that publish)",
    )
    parser.add_argument(
        "--canary",
        type=canary_share,
        metavar="PERCENT",
        help="publish as a canary: this share of requests (1 to 99) while the served one stays",
    )


def publish_options(args: argparse.Namespace) -> dict:
    return {
        "lock_mode": args.lock_mode,
        "lock_days": args.lock_days,
        "signing_key": args.signing_key,
        "kms": signer_kms(args.signer_profile),
        "canary": args.canary,
        "force": args.force,
    }


def signer_kms(profile: str | None):
    """The KMS client that signs: the named profile's (the signer's identity, apart from the
    publisher's, whose credentials may be in the environment: a named profile takes precedence
    over them), or None (publish makes one from the publishing credentials)."""
    if not profile:
        return None
    import boto3

    return boto3.Session(profile_name=profile).client("kms")


def add_artifact_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument(
        "--name", default=defaults.name, help=f"model name (default: {defaults.name})"
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=defaults.artifacts,
        help=f"local artifact folder (default: {defaults.artifacts})",
    )
    parser.add_argument("--version", type=int, help="default: the newest artifact")
    parser.add_argument(
        "--artifact",
        type=Path,
        help="an artifact folder (model.tflite + manifest.json, from any job); publish also "
        "takes a .tar.gz of its files, such as SageMaker's model.tar.gz; "
        "default: ARTIFACTS/NAME/VERSION",
    )


def chosen_artifact(args: argparse.Namespace) -> Path:
    from training.publish import PublishError, newest_artifact

    artifact_dir = args.artifact or (
        args.artifacts / args.name / str(args.version)
        if args.version
        else newest_artifact(args.artifacts, args.name)
    )
    if not artifact_dir.is_dir():
        raise PublishError(f"no artifact at {artifact_dir}")
    return artifact_dir


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, quantize, verify; optionally publish")
    add_config_arguments(train, TrainConfig)
    add_publish_arguments(train)
    train.add_argument("--publish", action="store_true", help="publish after training")

    convert = commands.add_parser(
        "convert", help="quantize and verify a Keras model trained elsewhere; optionally publish"
    )
    add_config_arguments(convert, ConvertConfig)
    add_publish_arguments(convert)
    convert.add_argument("--publish", action="store_true", help="publish after converting")

    publish = commands.add_parser("publish", help="publish an artifact to S3")
    add_artifact_arguments(publish)
    add_publish_arguments(publish)
    publish.add_argument(
        "--force",
        type=parse_flag,
        nargs="?",
        const=True,
        default=False,
        help="publish a model that failed its gate when it was made",
    )
    publish.add_argument(
        "--model",
        type=Path,
        help="a .tflite model trained anywhere: its manifest is read from the model "
        "(training/tflite_model.py) into ARTIFACTS/NAME/VERSION, then published",
    )
    publish.add_argument(
        "--labels", type=Path, help="with --model: class names, one per line, for its output"
    )
    # with --model, no --name means the file's name (pair.tflite: "pair"), never the default
    # model's: a .tflite published by mistake under mnist would replace the digit classifier
    publish.set_defaults(name=None)

    audit = commands.add_parser("audit", help="the last changes of a model's pointer (who, when)")
    audit.add_argument("--bucket", required=True, help="S3 bucket of the model registry")
    audit.add_argument("--prefix", default="models", help="key prefix (default: models)")
    audit.add_argument("--name", default="mnist", help="model name (default: mnist)")
    audit.add_argument("--last", type=int, default=10, help="how many (default: 10)")

    # model rollouts on the pointer (training/rollout.py)
    promote = commands.add_parser("promote", help="serve VERSION to everyone; clear the canary")
    promote.add_argument("--version", required=True, help="a published version")
    rollback = commands.add_parser(
        "rollback", help="clear the canary, or serve the previous version again"
    )
    status = commands.add_parser("status", help="the pointer: served, canary and share, history")
    for command in (promote, rollback):
        command.add_argument(
            "--repair-pointer",
            action="store_true",
            help="replace a latest.json that cannot be read: promote serves VERSION, rollback "
            "restores the last valid pointer of the audit trail",
        )
    for command in (promote, rollback, status):
        command.add_argument("--name", default="mnist", help="the model (default: mnist)")
        command.add_argument("--bucket", help="S3 bucket of the model registry")
        command.add_argument("--prefix", default="models", help="key prefix (default: models)")

    report = commands.add_parser("report", help="make an artifact's report.html again")
    add_artifact_arguments(report)

    fixture = commands.add_parser("fixture", help="remake the committed test model")
    fixture.add_argument("--out", type=Path, default=Path("tests/fixtures/mnist"))
    fixture.add_argument("--digits", type=int, default=500)
    return root


def canary_share(text: str) -> int:
    if not is_decimal(text) or not 1 <= int(text) <= 99:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole percent from 1 to 99")
    return int(text)


def do_rollout(args: argparse.Namespace) -> int:
    """promote, rollback, status: exit 1 when there is nothing to roll back."""
    from mlcore.registry import NothingToUndo
    from training import rollout
    from training.registry_s3 import PublishError

    if not args.bucket:
        raise PublishError("--bucket is required (make passes BUCKET)")
    if args.command == "promote":
        rollout.promote(
            args.bucket, args.prefix, args.name, args.version, repair=args.repair_pointer
        )
    elif args.command == "rollback":
        try:
            rollout.rollback(args.bucket, args.prefix, args.name, repair=args.repair_pointer)
        except NothingToUndo as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(rollout.describe(rollout.status(args.bucket, args.prefix, args.name)))
    if args.command == "status":
        print("last pointer changes (make audit LAST=N for more):")
        do_audit(args.bucket, args.prefix, args.name, 5)
    return 0


def config_from(args: argparse.Namespace, config_class: type):
    return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})


def do_publish(
    artifact_dir: Path, bucket: str | None, prefix: str, repair: bool = False, **options
) -> None:
    from training.manifest import read_manifest
    from training.publish import PublishError, publish

    if not bucket:
        raise PublishError("--bucket is required to publish (make passes BUCKET)")

    version = read_manifest(artifact_dir)["version"]
    result = publish(artifact_dir, bucket, prefix, repair_pointer=repair, progress=None, **options)
    for note in result.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if result["resumed"]:
        print(f"resumed   {', '.join(result['resumed'])} already stored with the same sha256")
    print(f"published {result['model']}\n          {result['manifest']}")
    if result.get("locked"):
        print(f"locked    {result['locked']} (S3 Object Lock)")
    if result.get("signed"):
        print(f"signed    with {result['signed']}")
    canary = options.get("canary")
    if canary is not None:
        print(
            f"pointer   version {version} is the canary ({canary}% of requests) beside version "
            f"{result['served']} (revision {result['revision']}); then make promote "
            f"VERSION={version} or make rollback"
        )
    elif result["pointer"]:
        print(f"pointer   {result['pointer']} -> version {version} (revision {result['revision']})")
    elif result["served"] == version:
        print(f"pointer   unchanged: it already serves version {version}")
    else:
        print(
            f"pointer   unchanged: it serves version {result['served']}, newer than {version} "
            "(publishing never moves it back)"
        )


def do_audit(bucket: str, prefix: str, name: str, last: int) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from mlcore.registry import Registry
    from training.registry_s3 import explain, read_audit, s3_client

    registry = Registry(prefix, name)
    try:
        records = read_audit(s3_client(), bucket, registry, last)
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, bucket, f"s3://{bucket}/{registry.root}/") from exc
    if not records:
        print(f"no pointer changes recorded under s3://{bucket}/{registry.root}/")

    def served(pointer: dict | None) -> str:
        if not pointer:
            return "none"
        canary = pointer.get("canary")
        with_canary = f" + canary {canary['version']} ({canary['share']}%)" if canary else ""
        return f"{pointer['version']}{with_canary}"

    for record in records:
        before, after = served(record.get("from")), served(record["to"])
        print(
            f"revision {record['revision']:<4} {record['at']}  {record['action']:<9} "
            f"{before} -> {after}  by {record['who']}"
        )


def main(argv: list[str] | None = None) -> int:
    from training.data import DatasetError
    from training.publish import PublishError, is_archive, unpack_artifact

    args = parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        if args.command in ("train", "convert"):
            from training.pipeline import refused, run_training, summary

            if args.command == "train":
                result = run_training(config_from(args, TrainConfig))
                if result is None:
                    print("worker done: trained; the chief writes (and publishes) the artifact")
                    return 0
            else:
                from training.external import run_conversion

                result = run_conversion(config_from(args, ConvertConfig))
            print(summary(result), flush=True)
            refusal = refused(result, trained=args.command == "train")
            if refusal:
                print(f"error: {refusal}", file=sys.stderr)
                return GATE_FAILED
            if args.publish:
                do_publish(
                    result.artifact_dir,
                    args.bucket,
                    args.prefix,
                    args.repair_pointer,
                    **publish_options(args),
                )
        elif args.command == "publish" and args.model:
            if args.artifact:
                raise ValueError("--model and --artifact: publish one or the other")
            from training.tflite_model import make_artifact

            name = args.name or args.model.name.removesuffix(".tflite")
            artifact = make_artifact(args.model, name, args.artifacts, args.version, args.labels)
            print(f"artifact  {artifact} (manifest read from {args.model})")
            do_publish(
                artifact, args.bucket, args.prefix, args.repair_pointer, **publish_options(args)
            )
        elif args.command == "publish":
            args.name = args.name or TrainConfig().name
            if args.labels:
                raise ValueError("--labels goes with --model (a .tflite model's class names)")
            if args.artifact and is_archive(args.artifact):  # e.g. SageMaker's model.tar.gz
                import tempfile

                with tempfile.TemporaryDirectory() as tmp:
                    unpacked = unpack_artifact(args.artifact, Path(tmp))
                    do_publish(
                        unpacked,
                        args.bucket,
                        args.prefix,
                        args.repair_pointer,
                        **publish_options(args),
                    )
            else:
                do_publish(
                    chosen_artifact(args),
                    args.bucket,
                    args.prefix,
                    args.repair_pointer,
                    **publish_options(args),
                )
        elif args.command == "audit":
            do_audit(args.bucket, args.prefix, args.name, args.last)
        elif args.command in ("promote", "rollback", "status"):
            return do_rollout(args)
        elif args.command == "report":
            from training.report import remake_report

            path, unavailable = remake_report(chosen_artifact(args))
            if unavailable:
                print(f"warning: no misclassified examples: {unavailable}", file=sys.stderr)
            print(f"report {path}")
        else:
            import tempfile

            from training.pipeline import run_training, summary, write_fixture

            with tempfile.TemporaryDirectory() as tmp:
                # the committed fixture's job: the default before issue 20 (a two-block CNN,
                # 5 epochs, patience 2, batch 64), small and quick, kept so it stays remakeable
                config = TrainConfig(
                    version=FIXTURE_VERSION,
                    artifacts=Path(tmp),
                    architecture="small_cnn",
                    epochs=5,
                    patience=2,
                    batch_size=64,
                )
                result = run_training(config)
                write_fixture(result, args.out, args.digits)
            print(summary(result).replace(str(result.artifact_dir), str(args.out)))
    except (ValueError, DatasetError, PublishError, FileExistsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
