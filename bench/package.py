"""Measure 4: deployment size of the function and its layers, zipped and unzipped, beside
Lambda's 250 MB limit and beside a package that carries TensorFlow.

A full run measures a `sam build` (arm64 wheels, as deployed) into a temporary folder; --quick
measures the host builds of the same Makefiles that the Lambda-like path made (lambda_path.py)."""

from __future__ import annotations

import os
import re
import subprocess
import time
import zipfile
from importlib import metadata
from pathlib import Path

from bench.common import PYTHON, ROOT

MIB = 1_048_576
LAMBDA_UNZIPPED_LIMIT_MIB = 250  # function + all layers, unzipped (262,144,000 bytes)


def tree_bytes(path: Path) -> tuple[int, int]:
    sizes = [f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()]
    return sum(sizes), len(sizes)


def zipped_bytes(path: Path, work: Path) -> int:
    """What `sam deploy` uploads: a deflate zip of the directory."""
    target = work / f"{path.name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path))
    size = target.stat().st_size
    target.unlink()
    return size


def sam_build(work: Path, log) -> dict[str, tuple[str, Path]]:
    """logical id -> (function or layer, its build folder), from `sam build` into `work`."""
    from samcli.yamlhelper import yaml_parse

    bin_dir = Path(PYTHON).parent
    log("  sam build (cross-platform wheels for arm64, no Docker) ...")
    command = [str(bin_dir / "sam"), "build", "--template", str(ROOT / "template.yaml")]
    command += ["--build-dir", str(work / "sam-build"), "--cache-dir", str(work / "sam-cache")]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = " | ".join((completed.stdout + completed.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"sam build failed ({tail})")
    resources = yaml_parse((work / "sam-build" / "template.yaml").read_text())["Resources"]
    kinds = {"AWS::Serverless::Function": "function", "AWS::Serverless::LayerVersion": "layer"}
    return {
        name: (kinds[spec["Type"]], work / "sam-build" / name)
        for name, spec in resources.items()
        if spec["Type"] in kinds
    }


def measure(parts: dict[str, tuple[str, Path]], work: Path) -> dict:
    measured = {}
    for name, (kind, folder) in sorted(parts.items()):
        unzipped, files = tree_bytes(folder)
        zipped = zipped_bytes(folder, work)
        measured[name] = {"kind": kind, "files": files, "unzipped_bytes": unzipped}
        measured[name]["zipped_bytes"] = zipped
    unzipped = sum(p["unzipped_bytes"] for p in measured.values())
    zipped = sum(p["zipped_bytes"] for p in measured.values())
    return {
        "parts": measured,
        "unzipped_bytes": unzipped,
        "zipped_bytes": zipped,
        "unzipped_mib": round(unzipped / MIB, 2),
        "zipped_mib": round(zipped / MIB, 2),
    }


def installed_closure(roots: list[str]) -> dict[str, int]:
    """Distribution -> installed bytes, for `roots` and every dependency they declare for this
    platform (environment markers evaluated, extras not requested)."""
    from packaging.requirements import Requirement

    seen: dict[str, int] = {}
    todo = list(roots)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            seen[name] = 0
            continue
        files = (Path(dist.locate_file(f)) for f in dist.files or [])
        seen[name] = sum(f.stat().st_size for f in files if f.is_file())
        requirements = (Requirement(r) for r in dist.requires or [])
        todo += [r.name for r in requirements if not r.marker or r.marker.evaluate({"extra": ""})]
    return seen


def tensorflow_package() -> dict:
    sizes = installed_closure(["tensorflow-cpu"])
    total = sum(sizes.values())
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:8]
    return {
        "source": "site-packages of .venv (x86_64, CPython 3.11 wheels): tensorflow-cpu and "
        "every dependency it declares, as installed (unzipped)",
        "unzipped_bytes": total,
        "unzipped_mib": round(total / MIB, 1),
        "largest": {k: round(v / MIB, 1) for k, v in top},
        "distributions": len(sizes),
    }


def run(work: Path, log, host_builds: dict[str, tuple[str, Path]] | None = None) -> dict:
    """A `sam build`, or (with host_builds, for --quick) the Lambda-like path's own builds."""
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"lambda_unzipped_limit_mib": LAMBDA_UNZIPPED_LIMIT_MIB}
    started = time.monotonic()
    try:
        parts = host_builds or sam_build(work, log)
    except RuntimeError as exc:
        result["source"] = f"not measured: {exc}"
    else:
        result["source"] = (
            "host builds of the same Makefiles, x86_64 wheels: --quick runs no sam build"
            if host_builds
            else f"sam build into a temporary folder ({time.monotonic() - started:.0f} s)"
        )
        result |= measure(parts, work)
    result["tensorflow"] = tensorflow_package()
    return result
