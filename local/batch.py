"""``make batch``: batch inference over an S3 prefix through the batch jobs' state machine.

    python -m local.batch --input s3://BUCKET/PREFIX/ --output s3://BUCKET/PREFIX/
        [--version N] [--name NAME] [--env dev] [--where auto|local|aws]
        [--parameter-overrides Key=Value ...]

Against the ENV stack (samconfig.toml; --where aws) it starts an execution of the stack's
state machine (output BatchStateMachineArn) and follows it to the end, printing its progress
(items done of total, failures). Locally (--where local; auto: where AWS_ENDPOINT_URL_S3 points
at a local S3), the same definition runs in aws-local-stepfunctions against that S3, with the
template's parameters (local.stepfunctions). Either way it ends with where the results are and
their summary, read from the map run's own summary (ResultWriter's manifest.json).

A job reads every object under INPUT and writes under OUTPUT/<execution name>/ (docs/batch.md):
one JSON Lines file of records per batch (records/), one line per key; and the map run's summary
(map-run/). Exit status: 0 when the execution succeeded, 1 when it failed (its error and cause
are printed), 2 when it could not start (what was wrong is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import template as tpl
from mlcore.registry import is_decimal

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".local" / "batch"
POLL_SECONDS = 5.0
DONE = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class JobError(Exception):
    """The job cannot start; main() prints it and exits 2."""


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str, what: str) -> Location:
        if not uri or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise JobError(f"{what}={uri!r}: expected s3://bucket/prefix/")
        bucket, _, prefix = uri[5:].partition("/")
        return cls(bucket, prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def within(self, other: Location) -> bool:
        return self.bucket == other.bucket and self.prefix.startswith(other.prefix)


def check_locations(source: Location, target: Location) -> None:
    if target.within(source):
        raise JobError(
            f"OUTPUT {target} lies inside INPUT {source}: a later job over INPUT would read "
            "these results as images; write them elsewhere"
        )


def job_input(source: Location, target: Location, version: str | None) -> dict[str, Any]:
    """The execution's input (statemachine/batch.asl.json's Comment)."""
    version = version or "latest"
    if version != "latest" and not (is_decimal(version) and int(version)):
        raise JobError(f"VERSION={version!r}: a published version number, or latest")
    return {
        "input_prefix": source.prefix,
        "output_prefix": target.prefix,
        "version": version if version == "latest" else int(version),
    }


# -- the map run's summary: what a job did, read back from S3 ---------------------------------


@dataclass
class Summary:
    objects: int = 0
    answered: int = 0
    errors: Counter = field(default_factory=Counter)
    failed_batches: int = 0
    failed_objects: int = 0
    records: list[str] = field(default_factory=list)


def summarize(s3: Any, bucket: str, manifest_key: str) -> Summary:
    """Every child execution's outcome, from ResultWriter's manifest and result files."""
    read = lambda key: json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())  # noqa: E731
    manifest = read(manifest_key)
    summary = Summary()
    for status, files in manifest["ResultFiles"].items():
        for file in files:
            for child in read(file["Key"]):
                if status == "SUCCEEDED":
                    answer = json.loads(child["Output"])
                    summary.objects += answer["objects"]
                    summary.answered += answer["answered"]
                    summary.errors.update(answer["errors"])
                    summary.records.append(answer["records"])
                else:
                    summary.failed_batches += 1
                    summary.failed_objects += len(json.loads(child["Input"])["Items"])
    return summary


def describe(summary: Summary, results: str, manifest: str) -> str:
    codes = ", ".join(f"{code} {n:,}" for code, n in sorted(summary.errors.items()))
    unanswered = summary.objects - summary.answered
    lines = [
        f"  {summary.objects:,} objects: {summary.answered:,} answered, {unanswered:,} without "
        f"an answer{f' ({codes})' if codes else ''}",
        f"  records: {results}records/ (one JSON Lines file per batch, one line per key)",
        f"  map run: {manifest}",
    ]
    if summary.failed_batches:
        lines.insert(
            1,
            f"  {summary.failed_batches:,} batches ({summary.failed_objects:,} objects) failed "
            "after their retries, within BatchToleratedFailurePercentage: the map run's FAILED "
            "files list them",
        )
    return "\n".join(lines)


# -- locally -----------------------------------------------------------------------------------


def local_parameters(overrides: dict[str, str], source: Location, target: Location) -> dict:
    """The template's parameters for a local job: the batch buckets are INPUT's and OUTPUT's,
    any of their folders allowed, unless the overrides say otherwise."""
    return {
        "BatchInputBucketName": source.bucket,
        "BatchOutputBucketName": target.bucket,
        "BatchInputPrefix": "",
        "BatchOutputPrefix": "",
        **overrides,
    }


def run_local(args: argparse.Namespace, source: Location, target: Location, job: dict) -> int:
    import boto3

    from local import stepfunctions
    from local.function import FunctionError

    overrides = tpl.parse_parameter_overrides(args.parameter_overrides)
    if args.name:
        overrides.setdefault("ModelName", args.name)
    template = tpl.Template(args.template, local_parameters(overrides, source, target))
    registry = template.parameters.get("BucketName")
    if target.bucket == registry:
        raise JobError(
            f"OUTPUT's bucket {target.bucket} is the model registry's (BUCKET): batch results "
            "go to a bucket of their own"
        )
    cap = int(template.parameters["BatchMaxConcurrency"])
    environments = args.environments or max(1, min(cap, os.cpu_count() or 1))
    name = stepfunctions.execution_name()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    print(
        f"local job {name}: {source} -> {target}{name}/ (model {template.parameters['ModelName']}"
        f", {job['version']}), the state machine in aws-local-stepfunctions, {environments} "
        f"environment(s) of BatchFunction; its log: {log_path}",
        flush=True,
    )
    s3 = boto3.client("s3")
    report = lambda line: print(line, flush=True)  # noqa: E731
    try:
        with open(log_path, "ab", buffering=0) as log:
            execution = stepfunctions.run_job(template, job, s3, log, report, environments, name)
    except (stepfunctions.StateMachineError, FunctionError) as exc:
        raise JobError(str(exc)) from None
    return finish(s3, execution.status, execution.output, execution.error, execution.cause)


# -- against the deployed stack ----------------------------------------------------------------


def run_aws(args: argparse.Namespace, source: Location, target: Location, job: dict) -> int:
    import tomllib

    import boto3

    from local.stack import stack_name, stack_outputs

    session = boto3.session.Session()
    with (ROOT / "samconfig.toml").open("rb") as f:
        stack = stack_name(tomllib.load(f), args.env)
    outputs = stack_outputs(session.client("cloudformation"), stack)
    if "BatchStateMachineArn" not in outputs:
        raise JobError(
            f"stack {stack} has no batch state machine: deploy this version (make deploy)"
        )
    model = outputs["ModelRegistryUri"].rstrip("/").rsplit("/", 1)[-1]
    if args.name and args.name != model:
        raise JobError(f"NAME={args.name}: stack {stack} serves the model {model!r}")
    for location, what, allowed in (
        (source, "INPUT", outputs["BatchInputUri"]),
        (target, "OUTPUT", outputs["BatchOutputUri"]),
    ):
        if not location.within(Location.parse(allowed, what)):
            raise JobError(
                f"{what} {location} is outside what stack {stack} may use ({allowed}; template "
                f"parameters Batch{what.title()}BucketName and Batch{what.title()}Prefix)"
            )
    from local import stepfunctions

    sfn = session.client("stepfunctions")
    name = stepfunctions.execution_name()
    started = sfn.start_execution(
        stateMachineArn=outputs["BatchStateMachineArn"], name=name, input=json.dumps(job)
    )
    arn = started["executionArn"]
    print(f"job {name} of stack {stack}: {source} -> {target}{name}/\n  {arn}", flush=True)
    described = follow(sfn, arn)
    output = json.loads(described["output"]) if described.get("output") else None
    return finish(
        session.client("s3"),
        described["status"],
        output,
        described.get("error"),
        described.get("cause"),
    )


def follow(sfn: Any, arn: str, poll: float = POLL_SECONDS, sleep=time.sleep) -> dict:
    """DescribeExecution until it ends, with the map run's item counts as they change."""
    last = None
    while True:
        described = sfn.describe_execution(executionArn=arn)
        runs = sfn.list_map_runs(executionArn=arn).get("mapRuns", [])
        if runs:
            counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
            line = (
                f"  items {counts['succeeded']:,} of {counts['total']:,} done, "
                f"{counts['failed'] + counts.get('timedOut', 0):,} failed, "
                f"{counts['running']:,} running"
            )
            if line != last:
                print(line, flush=True)
                last = line
        if described["status"] in DONE:
            return described
        sleep(poll)


def finish(s3: Any, status: str, output: Any, error: str | None, cause: str | None) -> int:
    """What the execution did; 0 when it succeeded."""
    if status != "SUCCEEDED":
        print(f"the job {status.lower()}: {error}: {readable(cause)}", file=sys.stderr)
        return 1
    details = output["map_run"]["ResultWriterDetails"]
    results = f"s3://{details['Bucket']}/{output['job']['results_prefix']}"
    manifest = f"s3://{details['Bucket']}/{details['Key']}"
    summary = summarize(s3, details["Bucket"], details["Key"])
    model = output["job"]["model"]
    print(f"the job succeeded, model {model['name']} version {model['version']}:")
    print(describe(summary, results, manifest), flush=True)
    return 0


def readable(cause: str | None) -> str:
    """A Lambda error's cause is its error document: its message is what a person reads."""
    try:
        document = json.loads(cause or "")
    except ValueError:
        return cause or ""
    return document.get("errorMessage", cause) if isinstance(document, dict) else cause


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.batch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--input", required=True, help="s3://bucket/prefix/ of the images")
    parser.add_argument("--output", required=True, help="s3://bucket/prefix/ for the results")
    parser.add_argument("--version", help="the model version (default: the stable one)")
    parser.add_argument("--name", help="the model (default: the template's or stack's)")
    parser.add_argument("--env", default="dev", help="samconfig.toml's environment (aws)")
    parser.add_argument("--where", choices=("auto", "local", "aws"), default="auto")
    parser.add_argument("--environments", type=int, help="local: execution environments")
    tpl.add_function_arguments(parser)
    return parser.parse_args(argv)


def where(choice: str, environ=os.environ) -> str:
    """auto: locally where a local S3 is configured (its endpoint set), else on AWS."""
    if choice != "auto":
        return choice
    return (
        "local" if environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") else "aws"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from local.stack import StackError

    try:
        source = Location.parse(args.input, "INPUT")
        target = Location.parse(args.output, "OUTPUT")
        check_locations(source, target)
        job = job_input(source, target, args.version)
        run = run_local if where(args.where) == "local" else run_aws
        return run(args, source, target, job)
    except (JobError, StackError, tpl.TemplateError) as exc:
        print(f"make batch: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"make batch: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
