"""Where the time goes: `python -m bench.profile [imports|warm] [--batch N] [--n N] [--tracing M]`.

Both run with the environment Lambda sets (LAMBDA_TASK_ROOT, a sampled trace id) and the
template's settings, TracingMode included (--tracing overrides it: lambda, xray-sdk or off).

imports: `python -X importtime` of the handler module in a fresh process, self time summed by
         top-level package (what the cold start pays before the first line of app.py runs).
warm:    pyinstrument over N warm requests through app.lambda_handler (moto_server on loopback,
         the committed fixture model), the same event the bench uses.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import (
    BUCKET,
    FIXTURE_DIR,
    FUNCTION_DIR,
    PYTHON,
    function_environment,
    lambda_environment,
)


def imports(tracing: str | None, module: str = "app") -> str:
    """Self time of every module `import app` executes, summed by top-level package, on the
    Lambda-like import path (bench/lambda_path.py) with the bytecode the packages ship."""
    from bench import lambda_path

    with tempfile.TemporaryDirectory() as tmp:
        built = lambda_path.build(Path(tmp))
        env = {**os.environ, **function_environment({}), **lambda_environment(built.function, 9)}
        env["PYTHONPATH"] = os.pathsep.join((str(built.function), built.pythonpath()))
        if tracing:
            env["TRACING_MODE"] = tracing
        # the imports alone: no early model load (config.loads_model_at_import), whose thread
        # would import beside them and wait on a registry that is not there
        env.pop("AWS_LAMBDA_INITIALIZATION_TYPE")
        # the handler module, and what its tracing imports when it is first asked for
        code = f"import {module}; getattr({module}, 'get_tracing', lambda: None)()"
        command = [PYTHON, "-S", "-X", "importtime", "-c", code]
        completed = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True)
    by_package: collections.Counter = collections.Counter()
    for line in completed.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[0].strip().isdigit():
            by_package[fields[2].strip().split(".")[0]] += int(fields[0])
    total = sum(by_package.values()) / 1000
    rows = [f"import {module}: {total:.1f} ms of module execution (self times); {built.note()}"]
    rows += [f"  {us / 1000:8.1f} ms  {name}" for name, us in by_package.most_common(25)]
    return "\n".join(rows)


def warm(batch: int, n: int, tracing: str | None) -> str:
    import boto3
    import numpy as np
    from pyinstrument import Profiler

    from local.bootstrap import LambdaContext
    from local.events import api_event
    from local.s3 import client_environment, moto_server
    from training.publish import publish

    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        shell = client_environment(int(endpoint.rsplit(":", 1)[1]))
        os.environ.update({**shell, **function_environment(shell)})
        os.environ["MODEL_CACHE_DIR"] = str(Path(tmp) / "models")
        os.environ.update(lambda_environment(FUNCTION_DIR, 9))  # UDP to the discard port
        if tracing:
            os.environ["TRACING_MODE"] = tracing
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        publish(FIXTURE_DIR, BUCKET, os.environ["MODEL_PREFIX"])
        sys.path.insert(0, str(FUNCTION_DIR))
        import app

        with np.load(FIXTURE_DIR / "digits.npz") as digits:
            body = json.dumps({"instances": digits["x"][:batch].astype(int).tolist()})
        event = api_event("POST", "/predict", body, headers={"Content-Type": "application/json"})
        devnull = open(os.devnull, "w")  # noqa: SIM115 - the function's log lines, until exit
        real_stdout, sys.stdout = sys.stdout, devnull
        try:
            for _ in range(20):
                assert app.lambda_handler(dict(event), LambdaContext())["statusCode"] == 200
            profiler = Profiler(interval=0.0001)
            with profiler:
                for _ in range(n):
                    app.lambda_handler(dict(event), LambdaContext())
        finally:
            sys.stdout = real_stdout
        show_all = bool(os.environ.get("PROFILE_SHOW_ALL"))  # frames pyinstrument hides
        return profiler.output_text(unicode=False, color=False, show_all=show_all)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=("imports", "warm"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--tracing", choices=("lambda", "xray-sdk", "off"), help="TracingMode")
    parser.add_argument("--module", default="app")
    args = parser.parse_args(argv)
    tracing = args.tracing
    print(
        imports(tracing, args.module)
        if args.what == "imports"
        else warm(args.batch, args.n, tracing)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
