"""Helpers for the tests of the SAM application: template.yaml, the layer and the build.

- load_template(): the template as CloudFormation sees it before any transform, short tags
  (!Ref, !Sub, !If...) turned into their long form by cfn-lint's own loader.
- translate(overrides): what CloudFormation deploys for some parameter values: the
  AWS::LanguageExtensions step (Fn::If on parameter-only conditions, AWS::NoValue), then the
  real SAM translator (samtranslator, the library the AWS::Serverless transform runs).
- trim_rules(): layers/runtime/trim.txt, parsed by the build's own trim.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bench.lambda_path import RUNTIME_PACKAGES
from local.transformed import (  # noqa: F401 (the tests' names for them)
    PARAMETER_SETS,
    deployed_resources,
    load_template,
    parameter_values,
    resolve_language_extensions,
    translate,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
LAYER_DIR = ROOT / "layers" / "runtime"
FUNCTION_DIR = ROOT / "functions" / "inference"
MLCORE_DIR = ROOT / "mlcore"  # shipped inside the function package (its Makefile copies it)
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"

# What the Lambda Python runtime itself provides, importable by the function without a layer
# (bench/lambda_path.py says where each comes from)
LAMBDA_RUNTIME_PACKAGES = frozenset(RUNTIME_PACKAGES)
# What AWS's OpenTelemetry layer provides with TracingMode otel (template: OtelLayerArn), and
# only then: tracing.OtelTracing imports it in that mode alone (requirements-otel.txt).
OTEL_LAYER_PACKAGES = {"opentelemetry"}


def load_trim_module():
    import sys

    if "layer_trim" in sys.modules:
        return sys.modules["layer_trim"]
    spec = importlib.util.spec_from_file_location("layer_trim", LAYER_DIR / "trim.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["layer_trim"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def trim_rules():
    trim = load_trim_module()
    return trim.parse_rules((LAYER_DIR / "trim.txt").read_text(encoding="utf-8"))


def pinned_requirements() -> dict[str, str]:
    """layers/runtime/requirements.txt as {normalized name: version}."""
    pins = {}
    for raw in (LAYER_DIR / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"layer requirement not pinned exactly: {raw!r}"
        pins[normalize(name)] = version.strip()
    return pins


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def tree_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def zipped_bytes(path: Path) -> int:
    """Size of the deployment zip of a directory (deflate, as sam package builds it)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for p in sorted(path.rglob("*")):
            if p.is_file():
                archive.write(p, p.relative_to(path).as_posix())
    return buffer.tell()
