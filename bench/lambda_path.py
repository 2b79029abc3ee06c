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
import sys
from dataclasses import dataclass
from importlib import util
from pathlib import Path

from bench.common import FUNCTION_DIR, PYTHON, ROOT

# What the AWS Lambda Python runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
HOST_PLATFORMS = "manylinux_2_28_{0} manylinux_2_27_{0} manylinux_2_17_{0} manylinux2014_{0}"
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class LambdaPath:
    function: Path  # the built function package (/var/task)
    layer: Path  # the built layer's python/ folder (/opt/python)
    runtime: Path  # links to the Lambda runtime's own packages, from .venv

    def pythonpath(self, layer: Path | None = None) -> str:
        return os.pathsep.join(map(str, (layer or self.layer, self.runtime)))

    def note(self) -> str:
        return (
            f"python -S; PYTHONPATH = layers/runtime built for this host ({platform.machine()}, "
            f"CPython {PYTHON_VERSION}, same pins and trim) + the Lambda runtime's boto3 stack "
            f"({', '.join(RUNTIME_PACKAGES)}) from .venv; the function package from its Makefile"
        )


def make(makefile: Path, target: str, artifacts: Path, **variables: str) -> None:
    """A package's own Makefile target, with bytecode compiled by this Python."""
    assignments = [f"{k}={v}" for k, v in {"ARTIFACTS_DIR": artifacts, **variables}.items()]
    completed = subprocess.run(
        ["make", "--no-print-directory", "-f", str(makefile), target, *assignments],
        env={**os.environ, "PYC_PYTHON": PYTHON},
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if completed.returncode != 0:
        tail = " | ".join((completed.stdout + completed.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"make {target} for this host failed: {tail}")


def build(work: Path) -> LambdaPath:
    make(
        FUNCTION_DIR / "Makefile",
        "build-InferenceFunction",
        work / "function",
        PYTHON_VERSION=PYTHON_VERSION,
    )
    make(
        ROOT / "layers" / "runtime" / "Makefile",
        "build-RuntimeLayer",
        work / "layer",
        PYTHON=PYTHON,
        PYTHON_VERSION=PYTHON_VERSION,
        PLATFORMS=HOST_PLATFORMS.format(platform.machine()),
    )
    runtime = work / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        origin = Path(util.find_spec(name).origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    return LambdaPath(work / "function", work / "layer" / "python", runtime)


def without_bytecode(folder: Path, copy: Path) -> Path:
    """A copy of a package without its .pyc files, as pip --no-compile alone builds it (Lambda's
    /var/task and /opt are read-only: nothing is cached there, every cold start compiles)."""
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy
