"""Measure 4: deployment size of the function and its layers (a `sam build` output), zipped and
unzipped, beside Lambda's 250 MB limit and beside a package that carries TensorFlow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

from bench.common import ROOT

MIB = 1_048_576
LAMBDA_UNZIPPED_LIMIT_MIB = 250  # function + all layers, unzipped (262,144,000 bytes)
LAMBDA_ZIPPED_DIRECT_UPLOAD_MIB = 50


def tree_bytes(path: Path) -> tuple[int, int]:
    total = files = 0
    for directory, _, names in os.walk(path):
        for name in names:
            file = Path(directory) / name
            if not file.is_symlink():
                total += file.stat().st_size
                files += 1
    return total, files


def zipped_bytes(path: Path, work: Path) -> int:
    """What `sam deploy` uploads: a deflate zip of the directory."""
    target = work / f"{path.name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for directory, _, names in os.walk(path):
            for name in sorted(names):
                file = Path(directory) / name
                archive.write(file, file.relative_to(path))
    size = target.stat().st_size
    target.unlink()
    return size


def _sources_mtime() -> float:
    newest = (ROOT / "template.yaml").stat().st_mtime
    for folder in (ROOT / "functions" / "inference", ROOT / "layers" / "runtime"):
        for file in folder.rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts and "build" not in file.parts:
                newest = max(newest, file.stat().st_mtime)
    return newest


def find_build(work: Path, allow_build: bool, log=print) -> tuple[Path | None, str]:
    """A fresh .aws-sam/build, else `sam build` into a temporary folder (if allowed)."""
    if not (ROOT / "template.yaml").is_file():
        return None, "not measured: template.yaml absent"
    existing = ROOT / ".aws-sam" / "build"
    if (existing / "template.yaml").is_file() and existing.joinpath(
        "template.yaml"
    ).stat().st_mtime >= _sources_mtime():
        return (
            existing,
            "reused .aws-sam/build (newer than template.yaml, functions/inference, layers/runtime)",
        )
    if not allow_build:
        return None, "not measured in --quick (no fresh .aws-sam/build); estimated from .venv"
    bin_dir = Path(os.sys.executable).parent
    build_dir = work / "sam-build"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    started = time.monotonic()
    log("  sam build (cross-platform wheels for arm64, no Docker) ...")
    completed = subprocess.run(
        [
            str(bin_dir / "sam"),
            "build",
            "--template",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(work / "sam-cache"),
        ],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if completed.returncode != 0:
        tail = " | ".join((completed.stdout + completed.stderr).strip().splitlines()[-5:])
        return None, f"not measured: sam build failed ({tail})"
    return build_dir, f"sam build into a temporary folder ({time.monotonic() - started:.0f} s)"


def _resource_kind(template_path: Path) -> dict[str, str]:
    """Logical id -> 'function' or 'layer', from the built template (no YAML dependency)."""
    kinds = {}
    current = None
    for line in template_path.read_text().splitlines():
        match = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if match:
            current = match.group(1)
        elif current and re.match(r"^\s+Type:\s*AWS::Serverless::(Function|LayerVersion)", line):
            kinds[current] = "function" if "Function" in line else "layer"
    return kinds


def measure_build(build: Path, work: Path) -> dict:
    kinds = _resource_kind(build / "template.yaml") if (build / "template.yaml").is_file() else {}
    parts = {}
    for child in sorted(p for p in build.iterdir() if p.is_dir()):
        unzipped, files = tree_bytes(child)
        parts[child.name] = {
            "kind": kinds.get(child.name, "unknown"),
            "files": files,
            "unzipped_bytes": unzipped,
            "zipped_bytes": zipped_bytes(child, work),
        }
    unzipped = sum(p["unzipped_bytes"] for p in parts.values())
    zipped = sum(p["zipped_bytes"] for p in parts.values())
    return {
        "parts": parts,
        "unzipped_bytes": unzipped,
        "zipped_bytes": zipped,
        "unzipped_mib": round(unzipped / MIB, 2),
        "zipped_mib": round(zipped / MIB, 2),
    }


def _requirement_names(requires: list[str] | None) -> list[str]:
    names = []
    for requirement in requires or []:
        spec, _, marker = requirement.partition(";")
        if "extra ==" in marker or "extra==" in marker:
            continue
        if marker and (
            'platform_system == "Windows"' in marker
            or 'sys_platform == "win32"' in marker
            or 'python_version < "3' in marker
        ):
            continue
        name = re.split(r"[\s<>=!~\[(]", spec.strip(), maxsplit=1)[0]
        if name:
            names.append(name)
    return names


def installed_closure(roots: list[str]) -> dict[str, int]:
    """Distribution -> installed bytes, for `roots` and every dependency they declare."""
    seen: dict[str, int] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            seen[key] = 0
            continue
        total = 0
        for file in dist.files or []:
            try:
                total += Path(dist.locate_file(file)).stat().st_size
            except OSError:
                pass
        seen[key] = total
        todo += _requirement_names(dist.requires)
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


def layer_estimate() -> dict:
    """Without a sam build: the layer's pinned packages as installed in .venv (x86_64) plus the
    function's modules. An estimate, labelled as such."""
    requirements = ROOT / "layers" / "runtime" / "requirements.txt"
    names = []
    if requirements.is_file():
        for line in requirements.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(re.split(r"[\s<>=!~\[]", line, maxsplit=1)[0])
    total = 0
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            try:
                total += Path(dist.locate_file(file)).stat().st_size
            except OSError:
                pass
    function, _ = tree_bytes(ROOT / "functions" / "inference")
    return {
        "unzipped_bytes": total + function,
        "unzipped_mib": round((total + function) / MIB, 2),
        "note": "estimate: layers/runtime/requirements.txt as installed in .venv (untrimmed, "
        "x86_64) + functions/inference",
    }


def run(work: Path, allow_build: bool, log=print) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    build, source = find_build(work, allow_build, log)
    result: dict = {"source": source, "lambda_unzipped_limit_mib": LAMBDA_UNZIPPED_LIMIT_MIB}
    if build is not None:
        result.update(measure_build(build, work))
    else:
        result.update(layer_estimate())
    result["tensorflow"] = tensorflow_package()
    if build is not None and build.is_relative_to(work):
        shutil.rmtree(build, ignore_errors=True)
    return result


if __name__ == "__main__":  # python -m bench.package: sizes only
    import json

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), allow_build=True), indent=2))
