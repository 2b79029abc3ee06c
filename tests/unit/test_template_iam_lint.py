"""Every policy document of what CloudFormation deploys from template.yaml, linted with an IAM
linter from PyPI (parliament, in its own pinned environment .venv-iamlint, which `make setup`
makes), for every parameter set of local/transformed.py (the defaults, prod, a bucket of your
own with SSE-KMS, signing, OIDC publishing and IAM auth, another account's publisher with GitLab
CI). Each finding must be one of KNOWN_FALSE_POSITIVES, each with its reason; anything else
fails, and so does a listed false positive that no longer occurs (the list stays true).

Documents: identity policies (roles' inline policies, managed policies), trust policies and
resource policies (bucket and topic policies). CloudFormation's references are replaced by
example values of the right shape (an ARN where an ARN belongs), so that the linter judges
actions, resources and condition keys as IAM would see them.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from functools import cache
from typing import Any

import pytest

from tests.sam_support import PARAMETER_SETS, ROOT, deployed_resources, translate

ACCOUNT = "123456789012"
REGION = "us-east-1"

# (document, issue, words of its detail) -> why it is not a fault. Documents are
# "Resource.Part" names, * matching any resource.
KNOWN_FALSE_POSITIVES: dict[tuple[str, str, str], str] = {
    # parliament lints every document as an identity policy; a trust policy's resource is the
    # role it belongs to, and IAM refuses a Resource element in one.
    ("*.AssumeRolePolicyDocument", "MALFORMED", "neither Resource nor NotResource"): (
        "a trust policy has no Resource element"
    ),
    # parliament knows the public identity providers (Cognito, Amazon, Facebook, Google) and
    # SAML providers; an account's IAM OIDC provider (GitHub's, GitLab's) is the documented
    # Federated principal of AssumeRoleWithWebIdentity.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html
    ("PublisherRole.AssumeRolePolicyDocument", "UNKNOWN_FEDERATION_SOURCE", ":oidc-provider/"): (
        "an IAM OIDC provider of the account is a valid federation source"
    ),
}


def known(document: str, finding: dict) -> tuple[str, str, str] | None:
    for entry in KNOWN_FALSE_POSITIVES:
        pattern, issue, words = entry
        if (
            fnmatch.fnmatchcase(document, pattern)
            and finding["issue"] == issue
            and words in finding["detail"]
        ):
            return entry
    return None


@cache
def template_resources(name: str) -> dict[str, dict[str, Any]]:
    return deployed_resources(translate(PARAMETER_SETS[name]))


def example_value(resources: dict, parameters: dict, name: str, attribute: str | None) -> str:
    """What CloudFormation would put for Ref name / GetAtt name.attribute, by the resource's
    type (a physical name, an ARN)."""
    pseudo = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "AWS::StackName": "stack",
        "AWS::URLSuffix": "amazonaws.com",
    }
    if name in pseudo:
        return pseudo[name]
    if name in parameters:
        return parameters[name]
    physical = f"stack-{name.lower()}-abc123"
    kind = resources.get(name, {}).get("Type", "")
    arns = {
        "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{physical}",
        "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{ACCOUNT}:policy/{physical}",
        "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
        "AWS::Lambda::Version": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}:7",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{physical}",
        "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{physical}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*",
    }
    if attribute == "Arn" or (attribute is None and kind in ("AWS::SNS::Topic",)):
        return arns.get(kind, f"arn:aws:iam::{ACCOUNT}:role/{physical}")
    if attribute is None and kind in ("AWS::IAM::ManagedPolicy", "AWS::Lambda::Version"):
        return arns[kind]
    return physical


def resolved(node: Any, resources: dict, parameters: dict) -> Any:
    def value(name: str, attribute: str | None = None) -> str:
        return example_value(resources, parameters, name, attribute)

    def walk(n: Any) -> Any:
        if isinstance(n, list):
            return [walk(x) for x in n]
        if not isinstance(n, dict):
            return n
        if set(n) == {"Ref"}:
            return value(n["Ref"])
        if set(n) == {"Fn::GetAtt"}:
            target, attribute = n["Fn::GetAtt"]
            return value(target, attribute)
        if set(n) == {"Fn::Sub"}:
            text, local = (n["Fn::Sub"], {}) if isinstance(n["Fn::Sub"], str) else n["Fn::Sub"]
            local = {k: walk(v) for k, v in local.items()}

            def put(m: re.Match) -> str:
                key = m.group(1)
                if key in local:
                    return str(local[key])
                target, _, attribute = key.partition(".")
                return value(target, attribute or None)

            return re.sub(r"\$\{([^}!]+)\}", put, text)
        if set(n) == {"Fn::Join"}:
            sep, items = n["Fn::Join"]
            return sep.join(walk(items))
        if set(n) == {"Fn::Split"}:
            sep, text = n["Fn::Split"]
            return walk(text).split(sep)
        if set(n) == {"Fn::Select"}:
            index, items = n["Fn::Select"]
            return walk(items)[int(index)]
        if set(n) == {"Fn::FindInMap"}:
            from tests.sam_support import load_template

            a, b, c = n["Fn::FindInMap"]
            return load_template()["Mappings"][a][b][c]
        return {k: walk(v) for k, v in n.items()}

    return walk(node)


def policy_documents(set_name: str) -> dict[str, dict]:
    """{"Resource.Part": policy document} of every IAM, S3 and SNS policy deployed."""
    from tests.sam_support import load_template, parameter_values

    resources = template_resources(set_name)
    parameters = parameter_values(load_template(), PARAMETER_SETS[set_name])
    documents = {}
    for name, resource in resources.items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind == "AWS::IAM::Role":
            documents[f"{name}.AssumeRolePolicyDocument"] = props["AssumeRolePolicyDocument"]
            for i, policy in enumerate(props.get("Policies", [])):
                suffix = "" if i == 0 else f"[{i}]"
                documents[f"{name}.Policies{suffix}"] = policy["PolicyDocument"]
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            documents[f"{name}.PolicyDocument"] = props["PolicyDocument"]
    return {k: resolved(v, resources, parameters) for k, v in documents.items()}


LINT = """
import json, sys
from parliament import analyze_policy_string
out = {}
for name, document in json.load(sys.stdin).items():
    policy = analyze_policy_string(json.dumps(document))
    out[name] = [{"issue": f.issue, "detail": str(f.detail)} for f in policy.findings]
print(json.dumps(out))
"""


def lint(documents: dict[str, dict]) -> dict[str, list[dict]]:
    python = ROOT / ".venv-iamlint" / "bin" / "python"
    assert python.exists(), "no .venv-iamlint: run make setup"
    answer = subprocess.run(
        [python, "-c", LINT], input=json.dumps(documents), capture_output=True, text=True
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    return json.loads(answer.stdout)


@pytest.fixture(scope="module")
def findings() -> dict[str, dict[str, list[dict]]]:
    return {name: lint(policy_documents(name)) for name in PARAMETER_SETS}


@pytest.mark.parametrize("set_name", list(PARAMETER_SETS))
def test_no_finding_outside_the_known_false_positives(findings, set_name):
    unexpected = [
        (document, f["issue"], f["detail"][:300])
        for document, found in findings[set_name].items()
        for f in found
        if known(document, f) is None
    ]
    assert not unexpected, json.dumps(unexpected, indent=1)


def test_every_known_false_positive_still_occurs(findings):
    seen = {
        known(document, f)
        for by_document in findings.values()
        for document, found in by_document.items()
        for f in found
    }
    assert set(KNOWN_FALSE_POSITIVES) <= seen, set(KNOWN_FALSE_POSITIVES) - seen


def test_the_documents_linted_include_every_kind(findings):
    names = set(findings["prod"]) | set(findings["own-bucket-kms-signed-github"])
    for expected in (
        "ModelBucketPolicy.PolicyDocument",
        "AuditTrailBucketPolicy.PolicyDocument",
        "PublisherPolicy.PolicyDocument",
        "PublisherRole.AssumeRolePolicyDocument",
        "SignerRole.Policies",
        "InferenceFunctionRole.Policies",
        "AlarmTopicPolicy.PolicyDocument",
    ):
        assert expected in names, expected


def test_the_linter_does_find_faults():
    """The linter is not silent: an unknown action and a mistyped condition key are found."""
    bad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"},
            {
                "Effect": "Allow",
                "Action": "kms:Sign",
                "Resource": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k",
                "Condition": {"StringEquals": {"kms:SigningAlgorithmm": "ECDSA_SHA_256"}},
            },
        ],
    }
    issues = {f["issue"] for f in lint({"bad": bad})["bad"]}
    assert "UNKNOWN_ACTION" in issues and "UNKNOWN_CONDITION_FOR_ACTION" in issues
