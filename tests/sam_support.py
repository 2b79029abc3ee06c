"""Helpers for the tests of the SAM application: template.yaml, the layer and the build.

- load_template(): the template as CloudFormation sees it before any transform, short tags
  (!Ref, !Sub, !If...) turned into their long form by cfn-lint's own loader.
- translate(overrides): what CloudFormation deploys for some parameter values: the
  AWS::LanguageExtensions step (Fn::If on parameter-only conditions, AWS::NoValue), then the
  real SAM translator (samtranslator, the library the AWS::Serverless transform runs).
- trim_rules(): layers/runtime/trim.txt, parsed by the build's own trim.py.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
LAYER_DIR = ROOT / "layers" / "runtime"
FUNCTION_DIR = ROOT / "functions" / "inference"
MLCORE_DIR = ROOT / "mlcore"  # shipped inside the function package (its Makefile copies it)
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"

# What the Lambda Python runtime itself provides, importable by the function without a layer
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html: the SDK for Python and
# its dependencies).
LAMBDA_RUNTIME_PACKAGES = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
    # SnapStart's runtime hooks (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html)
    "snapshot_restore_py",
}

_NO_VALUE = object()


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    # through JSON: plain dicts, lists and str instead of the loader's node classes
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def parameter_values(
    template: dict[str, Any], overrides: dict[str, str] | None = None
) -> dict[str, str]:
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(overrides or {})
    return values


def resolve_language_extensions(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """What AWS::LanguageExtensions does to this template before SAM sees it.

    CloudFormation resolves the intrinsic functions whose value is known before deployment;
    here that is every Fn::If (their conditions use parameters only) and AWS::NoValue.
    Everything else (Ref, Fn::Sub, Fn::GetAtt) is left for CloudFormation, as it is there.
    """
    template = copy.deepcopy(template)
    conditions = template.get("Conditions", {})

    def value(node: Any) -> str:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return values[node["Ref"]]
        return str(node)

    def holds(expr: Any) -> bool:
        ((fn, args),) = expr.items()
        if fn == "Fn::Equals":
            return value(args[0]) == value(args[1])
        if fn == "Fn::Not":
            return not holds(args[0])
        if fn == "Fn::And":
            return all(holds(a) for a in args)
        if fn == "Fn::Or":
            return any(holds(a) for a in args)
        if fn == "Condition":
            return holds(conditions[args])
        raise ValueError(f"unsupported condition function {fn}")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, when_true, when_false = node["Fn::If"]
                return walk(when_true if holds(conditions[name]) else when_false)
            if node == {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            walked = {k: walk(v) for k, v in node.items()}
            return {k: v for k, v in walked.items() if v is not _NO_VALUE}
        if isinstance(node, list):
            return [w for w in (walk(x) for x in node) if w is not _NO_VALUE]
        return node

    for section in ("Globals", "Resources", "Outputs"):
        if section in template:
            template[section] = walk(template[section])
    template["Transform"] = [t for t in template["Transform"] if t != "AWS::LanguageExtensions"]
    template["_conditions_true"] = sorted(name for name, expr in conditions.items() if holds(expr))
    return template


def translate(
    overrides: dict[str, str] | None = None, template: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The CloudFormation template that SAM produces for these parameter values."""
    from boto3.session import Session
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator

    source = load_template() if template is None else template
    values = parameter_values(source, overrides)
    resolved = resolve_language_extensions(source, values)
    conditions_true = resolved.pop("_conditions_true")
    # sam build/package replace local code paths with S3 locations; do the same.
    for resource in resolved["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=parser.Parser(),
        plugins=[],
        boto_session=Session(region_name="us-east-1"),
    )
    output = translator.translate(
        sam_template=resolved, parameter_values=dict(values), get_managed_policy_map=lambda: {}
    )
    output = json.loads(json.dumps(output))
    output["_conditions_true"] = conditions_true
    return output


def deployed_resources(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Resources of a translated template whose Condition holds (those CloudFormation creates)."""
    true = set(translated["_conditions_true"])
    return {
        name: r
        for name, r in translated["Resources"].items()
        if "Condition" not in r or r["Condition"] in true
    }


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
