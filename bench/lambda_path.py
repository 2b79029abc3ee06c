"""The import path a Lambda execution environment has, rebuilt on this machine.

On Lambda the function sees its own package (/var/task), the layer (/opt/python) and the
runtime's boto3/botocore, and nothing else. This project's .venv also holds what Lambda does
not (TensorFlow, awscrt, pyOpenSSL/cryptography, requests, ...), and some of it is imported
when present (botocore tries awscrt and pyOpenSSL; X-Ray's patch_all patches requests), which
would charge the cold start for imports that never happen on Lambda. So the function, the floor
and their warm children run with `python -S` and PYTHONPATH = the layer + the boto3 stack linked
from .venv, the function package on top. Both packages are built by their own Makefiles (as
`sam build` builds them: same pins, trim, mlcore copy and bytecode) for this host's platform
and Python. The seed's path keeps the whole .venv (it needs TensorFlow).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    FUNCTION_DIR,
    FUNCTION_VENV,
    LAMBDA_PYTHON,
    PYTHON,
    ROOT,
    python_version,
    site_packages,
)

# What the AWS Lambda Python runtime provides besides the standard library, importable by the
# function: the boto3 stack (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html)
# and SnapStart's runtime hooks
# (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
RUNTIME_PACKAGES += ("snapshot_restore_py",)
# The runtime's own bootstrap, which imports before the handler (bench/child.py): awslambdaric
# with its C extension and simplejson, as the managed runtime bundles it
# (aws/aws-lambda-python-runtime-interface-client#180).
RUNTIME_BOOTSTRAP = ("awslambdaric", "runtime_client", "simplejson")
HOST_PLATFORMS = "manylinux_2_28_{0} manylinux_2_27_{0} manylinux_2_17_{0} manylinux2014_{0}"


@dataclass(frozen=True)
class LambdaPath:
    function: Path  # the built function package (/var/task)
    layer: Path  # the built layer's python/ folder (/opt/python)
    runtime: Path  # links to the Lambda runtime's own packages, from .venv-function
    python: str  # the interpreter (the runtime's Python: .venv-function's)
    version: str  # its version, e.g. 3.13.0

    def pythonpath(self, layer: Path | None = None) -> str:
        return os.pathsep.join(map(str, (layer or self.layer, self.runtime)))

    def note(self) -> str:
        return (
            f"CPython {self.version} (.venv-function's interpreter, the template's runtime) -S; "
            f"PYTHONPATH = layers/runtime built for this host ({platform.machine()}, same pins "
            f"and trim) + the Lambda runtime's boto3 stack ({', '.join(RUNTIME_PACKAGES)}) from "
            ".venv-function; the function package from its Makefile"
        )


def make(makefile: Path, target: str, artifacts: Path, **variables: str) -> None:
    """A package's own Makefile target, with bytecode compiled by the runtime's Python."""
    assignments = [f"{k}={v}" for k, v in {"ARTIFACTS_DIR": artifacts, **variables}.items()]
    completed = subprocess.run(
        ["make", "--no-print-directory", "-f", str(makefile), target, *assignments],
        env={**os.environ, "PYC_PYTHON": LAMBDA_PYTHON},
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if completed.returncode != 0:
        tail = " | ".join((completed.stdout + completed.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"make {target} for this host failed: {tail}")


def build(work: Path) -> LambdaPath:
    """Both packages for this host and the runtime's Python (.venv-function's: 3.13)."""
    version = python_version(LAMBDA_PYTHON)
    minor = ".".join(version.split(".")[:2])
    make(
        FUNCTION_DIR / "Makefile",
        "build-InferenceFunction",
        work / "function",
        PYTHON_VERSION=minor,
    )
    make(
        ROOT / "layers" / "runtime" / "Makefile",
        "build-RuntimeLayer",
        work / "layer",
        PYTHON=PYTHON,  # pip only downloads and unpacks, for --python-version
        PYTHON_VERSION=minor,
        PLATFORMS=HOST_PLATFORMS.format(platform.machine()),
    )
    runtime = work / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    packages = site_packages(FUNCTION_VENV)
    for name in RUNTIME_PACKAGES + RUNTIME_BOOTSTRAP:  # a package, a module or an extension
        sources = [packages / name, packages / f"{name}.py", *packages.glob(f"{name}.*.so")]
        source = next((s for s in sources if s.exists()), None)
        if source is None:
            raise SystemExit(f"bench: {name} is not in {packages}; run make setup")
        (runtime / source.name).symlink_to(source)
    return LambdaPath(work / "function", work / "layer" / "python", runtime, LAMBDA_PYTHON, version)


def without_bytecode(folder: Path, copy: Path) -> Path:
    """A copy of a package without its .pyc files, as pip --no-compile alone builds it (Lambda's
    /var/task and /opt are read-only: nothing is cached there, every cold start compiles)."""
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy
