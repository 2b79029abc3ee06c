"""What CloudFormation deploys from template.yaml for some parameter values, offline.

- load_template(): the template before any transform, short tags (!Ref, !Sub, !If...) in their
  long form (cfn-lint's own loader).
- translate(overrides): the AWS::LanguageExtensions step (Fn::If on parameter-only
  conditions, AWS::NoValue), then the real SAM translator (samtranslator, the library the
  AWS::Serverless transform runs).
- PARAMETER_SETS: the parameter values whose transformed templates `make validate` scans with
  checkov and tests/unit/test_template_iam_lint.py lints with parliament.

`python -m local.transformed --out DIR` writes DIR/NAME.json for each set: what CloudFormation
deploys (deployed_template).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

_ACCOUNT = "123456789012"
_SSO = f"arn:aws:iam::{_ACCOUNT}:role/aws-reserved/sso.amazonaws.com"
_KEY = f"arn:aws:kms:us-east-1:{_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Every resource and statement some parameter turns on appears in at least one set: the
# defaults; prod as samconfig.toml deploys it (with the principals make deploy names and an
# alarm address); a bucket of your own with SSE-KMS, signing and CI publishing through OIDC
# with IAM auth; the HTTP API; another account's publisher with an external id and GitLab CI.
PARAMETER_SETS: dict[str, dict[str, str]] = {
    "defaults": {},
    "prod": {
        "DeploymentType": "Canary10Percent5Minutes",
        "SnapStart": "true",
        "ReservedConcurrency": "50",
        "StageName": "prod",
        "ModelRefreshSeconds": "60",
        "AuditTrail": "true",
        "WebAclRateLimit": "2000",
        "AlarmEmail": "ops@example.com",
        "PublisherPrincipalArn": f"arn:aws:iam::{_ACCOUNT}:role/release-publisher",
        "DeployerArns": f"{_SSO}/AWSReservedSSO_Deploy_0a1b",
        "RegistryAdminArns": f"{_SSO}/*/AWSReservedSSO_AdministratorAccess_*",
        "RegistryBreakGlassArn": f"arn:aws:iam::{_ACCOUNT}:role/registry-break-glass",
    },
    "own-bucket-kms-signed-github": {
        "BucketName": "own-registry-bucket",
        "ApiAuthMode": "IAM",
        "ModelKmsKeyArn": _KEY,
        "ManifestSigningKeyArn": _KEY.replace("1234abcd", "5678abcd"),
        "ManifestPublicKey": "TUlJQg==",
        "SignerPrincipalArn": f"arn:aws:iam::{_ACCOUNT}:role/release-signer",
        "PublisherOidcProvider": "token.actions.githubusercontent.com",
        "PublisherOidcSubject": "repo:example/models:environment:prod",
        "CaptureSampleRate": "0.01",
        "ConfigureApiGatewayLogging": "true",
        "TracingMode": "off",
        "ApiQuotaPerDay": "0",
    },
    # the HTTP API (ApiType http) in front of the function, IAM (SigV4) authorization
    "http-api": {"ApiType": "http", "ApiAuthMode": "IAM", "CaptureSampleRate": "0.01"},
    "cross-account-gitlab": {
        "PublisherPrincipalArn": "arn:aws:iam::210987654321:role/ci-publisher",
        "PublisherExternalId": "registry-publish-7f3a",
        "PublisherOidcProvider": "gitlab.com",
        "PublisherOidcSubject": "project_path:example/models:ref_type:branch:ref:main",
        "PublisherOidcAudience": "https://gitlab.com",
        "AuditTrail": "true",
        "ProvisionedConcurrency": "2",
    },
}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    # through JSON: plain dicts, lists and str instead of the loader's node classes
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


_NO_VALUE = object()


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
    """The CloudFormation template that SAM produces for these parameter values (the
    names of the conditions that hold under "_conditions_true")."""
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


def deployed_template(translated: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The translated template as CloudFormation deploys it, for a scanner: only the resources
    whose condition holds, and each resource SAM generated for one of the template's (named
    after it: InferenceApi -> InferenceApiStage) with that resource's checkov skips, whose
    reasons are about what it makes (an API's stage is where API caching and tracing are)."""
    resources = deployed_resources(translated)
    for name, resource in source["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov")
        if not skips:
            continue
        for generated_name, generated in resources.items():
            metadata = generated.setdefault("Metadata", {})
            if generated_name.startswith(name) and "checkov" not in metadata:
                metadata["checkov"] = skips
    kept = {k: v for k, v in translated.items() if k not in ("Resources", "_conditions_true")}
    return {**kept, "Resources": resources}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for NAME.json")
    args = parser.parse_args(argv)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its feature-toggle notes
    args.out.mkdir(parents=True, exist_ok=True)
    source = load_template()
    for name, overrides in PARAMETER_SETS.items():
        deployed = deployed_template(translate(overrides), source)
        (args.out / f"{name}.json").write_text(json.dumps(deployed, indent=1) + "\n")
        print(args.out / f"{name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
