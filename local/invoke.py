"""``python -m local.invoke --event FILE``: one event through a function, as ``sam local
invoke`` runs it.

Where a Docker engine answers (``docker info`` succeeds) it runs ``sam local invoke``
itself. Elsewhere it runs the handler in one local execution environment
(``local.function``), its environment resolved from template.yaml (with
``--parameter-overrides``) and the optional ``--env-vars`` file exactly as sam resolves it.
The function's response goes to stdout as JSON; its logs, EMF metric lines and the
START/END/REPORT lines go to stderr, and its EMF metrics to the local CloudWatch when
``AWS_ENDPOINT_URL_CLOUDWATCH`` is set (``local.cloudwatch``). Exit status 1 when the handler
failed (stdout then holds Lambda's error document), 2 when the invocation could not be set up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from local import template as tpl
from local.cloudwatch import EmfForwarder
from local.function import ExecutionEnvironment, FunctionError, load_function


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.invoke",
        description="Run a function on one event, as sam local invoke (Docker-free where no "
        "Docker engine answers).",
    )
    parser.add_argument("--event", "-e", required=True, help="the event JSON file (- for stdin)")
    parser.add_argument(
        "--function", help="logical id of the function (default: the template's only one)"
    )
    tpl.add_function_arguments(parser)
    parser.add_argument(
        "--runner",
        choices=("auto", "sam", "local"),
        default="auto",
        help="sam: sam local invoke (needs Docker); local: the Docker-free runner; "
        "auto (default): sam where `docker info` succeeds",
    )
    return parser.parse_args(argv)


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_sam(args: argparse.Namespace) -> int:
    sam = shutil.which("sam", path=str(Path(sys.executable).parent)) or shutil.which("sam")
    if not sam:
        print("local.invoke: the sam CLI is not installed (make setup)", file=sys.stderr)
        return 2
    command = [sam, "local", "invoke", *([args.function] if args.function else [])]
    command += ["-e", args.event, "-t", str(args.template)]
    if args.env_vars:
        command += ["--env-vars", str(args.env_vars)]
    if args.parameter_overrides:
        command += ["--parameter-overrides", " ".join(args.parameter_overrides)]
    print(
        f"local.invoke: Docker answers, running: {' '.join(command)}\n"
        "  (inside Docker, 127.0.0.1 is the container: point AWS_ENDPOINT_URL_S3 at "
        "host.docker.internal to reach a local S3 server)",
        file=sys.stderr,
        flush=True,
    )
    return subprocess.run(command).returncode


def read_event(source: str):
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise FunctionError(f"{source}: cannot read the event ({exc.strerror})") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FunctionError(f"{source}: the event is not JSON ({exc})") from exc


def run_local(args: argparse.Namespace) -> int:
    try:
        event = read_event(args.event)
        template = tpl.Template(
            args.template, tpl.parse_parameter_overrides(args.parameter_overrides)
        )
        function = load_function(
            template,
            args.function,
            tpl.load_env_vars(args.env_vars),
            warn=lambda message: print(f"warning: {message}", file=sys.stderr),
        )
        sys.stderr.flush()
        environment = ExecutionEnvironment(
            function,
            sys.stderr.fileno(),
            owner="local-invoke",
            forward=EmfForwarder.from_environment(),
        )
    except (tpl.TemplateError, FunctionError) as exc:
        print(f"local.invoke: {exc}", file=sys.stderr)
        return 2
    try:
        result = environment.invoke(event)
    finally:
        environment.close()
    print(json.dumps(result.payload), flush=True)
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.runner == "sam" or (args.runner == "auto" and docker_answers()):
        return run_sam(args)
    return run_local(args)


if __name__ == "__main__":
    sys.exit(main())
