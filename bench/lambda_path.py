"""The import path a Lambda execution environment has, rebuilt on this machine.

On Lambda the function sees its own code (/var/task), the layer (/opt/python) and the
runtime's boto3/botocore, and nothing else. This project's .venv also holds what Lambda does
not (TensorFlow, awscrt, pyOpenSSL/cryptography, requests, ...), and some of it is imported
when present (botocore tries awscrt and pyOpenSSL; X-Ray's patch_all patches requests), which
would charge the cold start for imports that never happen on Lambda. So the function, the floor
and their warm workers run with `python -S` and PYTHONPATH = the layer built for this host by
the layer's own Makefile (same pins and trim, x86_64 wheels for this Python) + the boto3 stack
linked from .venv. The seed's path keeps the whole .venv (it needs TensorFlow).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import util
from pathlib import Path

from bench.common import ROOT

# What the AWS Lambda Python runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
HOST_PLATFORMS = (
    "manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64"
)


def build(work: Path, log=print) -> tuple[str | None, str]:
    """(PYTHONPATH for the function's processes, description) or (None, why not)."""
    layer = work / "layer"
    makefile = ROOT / "layers" / "runtime" / "Makefile"
    if not makefile.is_file():
        return None, "layers/runtime/Makefile absent: the function ran on the whole .venv"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    machine = os.uname().machine
    platforms = HOST_PLATFORMS if machine == "x86_64" else HOST_PLATFORMS.replace("x86_64", machine)
    completed = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(makefile),
            "build-RuntimeLayer",
            f"ARTIFACTS_DIR={layer}",
            f"PYTHON={sys.executable}",
            f"PYTHON_VERSION={version}",
            f"PLATFORMS={platforms}",
        ],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode != 0:
        tail = " | ".join((completed.stdout + completed.stderr).strip().splitlines()[-3:])
        return (
            None,
            f"layer build for this host failed ({tail}): the function ran on the whole .venv",
        )
    runtime = work / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        target = runtime / source.name
        if not target.exists():
            target.symlink_to(source)
    path = f"{layer / 'python'}{os.pathsep}{runtime}"
    log(
        f"  Lambda-like import path: layer built for {machine} CPython {version} + "
        f"{', '.join(RUNTIME_PACKAGES)} from .venv"
    )
    return path, (
        f"python -S; PYTHONPATH = layers/runtime built for this host ({machine}, CPython "
        f"{version}, same pins and trim) + the Lambda runtime's boto3 stack "
        f"({', '.join(RUNTIME_PACKAGES)}) from .venv; stdlib {sysconfig.get_paths()['stdlib']}"
    )


def without_bytecode(path: str, work: Path) -> str:
    """The same import path with a copy of the layer that has no .pyc files: the layer as pip
    --no-compile alone builds it (Lambda's /opt is read-only, so nothing is cached there)."""
    layer, *rest = path.split(os.pathsep)
    copy = work / "layer-without-bytecode" / "python"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(layer, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return os.pathsep.join([str(copy), *rest])
