"""Registry security in template.yaml (issue 15), on what CloudFormation deploys: the
AWS::LanguageExtensions step and the real SAM translator (tests/sam_support.py).

The bucket policy is also evaluated here, for its Deny statements only (they win over any
Allow, whatever a principal's own IAM policies say): a small evaluator of the condition
operators this policy uses, with CloudFormation's references replaced by example values.
"""

from __future__ import annotations

import fnmatch
import re

import pytest

from tests.sam_support import deployed_resources, load_template, translate

ACCOUNT = "123456789012"
BUCKET = "stack-modelbucket-abc"
PUBLISHER = f"arn:aws:iam::{ACCOUNT}:role/stack-PublisherRole-XYZ"
ROOT_USER = f"arn:aws:iam::{ACCOUNT}:root"
REFS = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": "us-east-1",
    "AWS::StackName": "stack",
    "ModelBucket": BUCKET,
    "ModelBucket.Arn": f"arn:aws:s3:::{BUCKET}",
    "PublisherRole.Arn": PUBLISHER,
    "ModelPrefix": "models",
    "ModelName": "mnist",
}


def resolve(node, values):
    """Ref, Fn::GetAtt, Fn::Sub, Fn::Split with example values (Fn::If is gone already)."""
    if isinstance(node, list):
        return [resolve(x, values) for x in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return values[node["Ref"]]
    if set(node) == {"Fn::GetAtt"}:
        return values[".".join(node["Fn::GetAtt"])]
    if set(node) == {"Fn::Sub"}:
        text, local = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        scope = {**values, **{k: resolve(v, values) for k, v in local.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(scope[m.group(1)]), text)
    if set(node) == {"Fn::Split"}:
        sep, text = node["Fn::Split"]
        return resolve(text, values).split(sep)
    return {k: resolve(v, values) for k, v in node.items()}


def matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)  # IAM's * and ? (no [] in these policies)


def denied(statements, principal: str, action: str, key: str, headers=()) -> bool:
    """Whether a Deny statement of the bucket policy applies to this TLS request."""
    resource = f"arn:aws:s3:::{BUCKET}/{key}"
    context = {
        "aws:PrincipalArn": principal,
        "aws:SecureTransport": "true",
        **{f"s3:{h}": "*" for h in headers},
    }
    for st in statements:
        if st["Effect"] != "Deny" or st["Principal"] != "*":
            continue
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if not any(matches(a, action) for a in actions):
            continue
        if not any(matches(r, resource) for r in resources):
            continue
        if all(holds(op, keys, context) for op, keys in st.get("Condition", {}).items()):
            return True
    return False


def holds(op: str, keys: dict, context: dict) -> bool:
    def values(v):
        return v if isinstance(v, list) else [v]

    if op == "ArnNotLike":
        return all(not any(matches(p, context[k]) for p in values(v)) for k, v in keys.items())
    if op == "Null":
        return all((k not in context) == (v == "true") for k, v in keys.items())
    if op == "Bool":
        return all(context.get(k) == v for k, v in keys.items())
    raise AssertionError(f"operator {op} not modelled here: extend the evaluator")


@pytest.fixture(scope="module")
def defaults():
    return translate()


def bucket_policy(translated, values=REFS):
    resources = deployed_resources(translated)
    return resolve(resources["ModelBucketPolicy"]["Properties"]["PolicyDocument"], values)[
        "Statement"
    ]


WRITES = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention"]


@pytest.mark.parametrize("action", WRITES + ["s3:BypassGovernanceRetention"])
@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:iam::{ACCOUNT}:role/stack-InferenceFunctionRole-ABC",  # the function
        f"arn:aws:iam::{ACCOUNT}:role/ci-deployer",  # anyone with s3:* in its own policy
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        "arn:aws:iam::999999999999:role/PublisherRole",  # another account's look-alike
    ],
)
def test_with_the_defaults_only_the_publisher_writes_under_the_registry_prefix(
    defaults, principal, action
):
    statements = bucket_policy(defaults)
    for key in ("models/mnist/1796000000/model.tflite", "models/mnist/latest.json"):
        assert denied(statements, principal, action, key, headers=("if-none-match", "if-match"))
    # outside the registry prefix the bucket policy does not decide (IAM policies do)
    assert not denied(statements, principal, action, "elsewhere/file")


def test_the_publisher_and_the_account_root_may_write_conditionally(defaults):
    statements = bucket_policy(defaults)
    for who in (PUBLISHER, ROOT_USER):
        assert not denied(
            statements, who, "s3:PutObject", "models/mnist/17/model.tflite", ("if-none-match",)
        )
        assert not denied(
            statements, who, "s3:PutObject", "models/mnist/latest.json", ("if-match",)
        )
        assert not denied(
            statements, who, "s3:PutObject", "models/mnist/latest.json", ("if-none-match",)
        )
        assert not denied(statements, who, "s3:PutObjectRetention", "models/mnist/17/model.tflite")


def test_nobody_overwrites_a_version_or_moves_the_pointer_unconditionally(defaults):
    statements = bucket_policy(defaults)
    for who in (PUBLISHER, ROOT_USER):
        for key in ("models/mnist/17/model.tflite", "models/mnist/17/manifest.json"):
            assert denied(statements, who, "s3:PutObject", key)
            assert denied(statements, who, "s3:PutObject", key, ("if-match",))
        assert denied(statements, who, "s3:PutObject", "models/mnist/audit/pointer/1.json")
        assert denied(statements, who, "s3:PutObject", "models/mnist/latest.json")


def test_registry_admins_are_exempt_when_named():
    admins = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*"
    admin = admins.replace("*", "1a2b")
    translated = translate({"RegistryAdminArns": admins})
    statements = bucket_policy(translated, {**REFS, "RegistryAdminArns": admins})
    assert not denied(statements, admin, "s3:DeleteObject", "models/mnist/17/model.tflite")
    assert not denied(statements, PUBLISHER, "s3:DeleteObject", "models/mnist/17/model.tflite")
    assert denied(statements, f"arn:aws:iam::{ACCOUNT}:user/bob", "s3:DeleteObject", "models/x")
    # without the parameter the same role is denied
    assert denied(bucket_policy(translate()), admin, "s3:DeleteObject", "models/mnist/17/a")


def test_tls_is_still_required(defaults):
    (tls,) = [s for s in bucket_policy(defaults) if s["Sid"] == "DenyInsecureTransport"]
    assert tls["Action"] == "s3:*" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def publisher_statements(translated, values=REFS):
    policy = deployed_resources(translated)["PublisherPolicy"]["Properties"]["PolicyDocument"]
    return {
        s["Sid"]: s
        for s in resolve(
            policy,
            {**values, "ModelPrefix": "models", "ModelName": "mnist", "BucketName": "own-bucket"},
        )["Statement"]
    }


def test_publisher_policy_grants_exactly_what_publishing_needs(defaults):
    statements = publisher_statements(defaults)
    assert set(statements) == {"PublishModelVersions", "ReadRegistryBucket"}
    objects = statements["PublishModelVersions"]
    assert objects["Effect"] == "Allow"
    assert sorted(objects["Action"]) == ["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"]
    assert objects["Resource"] == f"arn:aws:s3:::{BUCKET}/models/mnist/*"
    bucket = statements["ReadRegistryBucket"]
    assert sorted(bucket["Action"]) == ["s3:GetBucketObjectLockConfiguration", "s3:ListBucket"]
    assert bucket["Resource"] == f"arn:aws:s3:::{BUCKET}"
    no_delete = [a for s in statements.values() for a in s["Action"] if "Delete" in a]
    assert not no_delete and not any("*" in a for s in statements.values() for a in s["Action"])


def test_publisher_policy_with_an_own_bucket_names_that_bucket():
    statements = publisher_statements(translate({"BucketName": "own-bucket"}))
    assert (
        statements["PublishModelVersions"]["Resource"] == "arn:aws:s3:::own-bucket/models/mnist/*"
    )
    assert "ModelBucketPolicy" not in deployed_resources(translate({"BucketName": "own-bucket"}))


def test_publisher_role_trusts_the_given_principal_or_the_account(defaults):
    def trust(translated):
        role = deployed_resources(translated)["PublisherRole"]["Properties"]
        assert role["ManagedPolicyArns"] == [{"Ref": "PublisherPolicy"}]
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        return resolve(statement["Principal"]["AWS"], {**REFS, "PublisherPrincipalArn": ci})

    ci = f"arn:aws:iam::{ACCOUNT}:role/github-ci"
    assert trust(defaults) == ROOT_USER
    assert trust(translate({"PublisherPrincipalArn": ci})) == ci


def test_the_function_stays_read_only(defaults):
    resources = deployed_resources(defaults)
    for role in ("InferenceFunctionRole", "MonitorFunctionRole"):
        (inline,) = resources[role]["Properties"]["Policies"]
        actions = {
            a
            for s in inline["PolicyDocument"]["Statement"]
            for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        }
        assert not any(a.startswith("s3:") and a != "s3:GetObject" for a in actions), role
        assert not any(a.startswith("kms:") for a in actions), role


def test_created_bucket_has_object_lock_and_publish_locks_with_the_template_defaults():
    from training.registry_s3 import LOCK_DAYS, LOCK_MODE

    template = load_template()
    props = template["Resources"]["ModelBucket"]["Properties"]
    assert props["ObjectLockEnabled"] is True
    # no default retention: latest.json and the audit records stay writable
    assert props["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    parameters = template["Parameters"]
    assert parameters["ObjectLockMode"]["Default"] == LOCK_MODE
    assert sorted(parameters["ObjectLockMode"]["AllowedValues"]) == ["COMPLIANCE", "GOVERNANCE"]
    assert parameters["ObjectLockRetentionDays"]["Default"] == LOCK_DAYS


def test_sse_kms_only_when_a_key_is_given_and_then_the_functions_may_decrypt_with_it():
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    def encryption(translated):
        props = deployed_resources(translated)["ModelBucket"]["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        return rule

    def kms_grants(translated, role):
        (inline,) = deployed_resources(translated)[role]["Properties"]["Policies"]
        return [s for s in inline["PolicyDocument"]["Statement"] if "kms" in str(s["Action"])]

    default = translate()
    assert encryption(default)["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert not kms_grants(default, "InferenceFunctionRole")
    assert "EncryptWithTheRegistryKey" not in publisher_statements(default)

    with_key = translate({"ModelKmsKeyArn": key})
    assert encryption(with_key) == {
        "ServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Ref": "ModelKmsKeyArn"},
        },
        "BucketKeyEnabled": True,
    }
    for role in ("InferenceFunctionRole", "MonitorFunctionRole"):
        (grant,) = kms_grants(with_key, role)
        assert grant["Action"] == "kms:Decrypt" and grant["Resource"] == {"Ref": "ModelKmsKeyArn"}
    publisher = publisher_statements(with_key, {**REFS, "ModelKmsKeyArn": key})
    assert sorted(publisher["EncryptWithTheRegistryKey"]["Action"]) == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]
    assert publisher["EncryptWithTheRegistryKey"]["Resource"] == key


def test_signing_grants_kms_sign_to_the_publisher_and_gives_the_function_the_public_key():
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/mrk-1"
    signed = translate({"ManifestSigningKeyArn": key, "ManifestPublicKey": "TUlJQg=="})
    statements = publisher_statements(signed, {**REFS, "ManifestSigningKeyArn": key})
    assert statements["SignManifests"]["Action"] == "kms:Sign"
    assert statements["SignManifests"]["Resource"] == key
    assert "SignManifests" not in publisher_statements(translate())
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MANIFEST_PUBLIC_KEY"] == {"Ref": "ManifestPublicKey"}
    rule = load_template()["Rules"]["SigningNeedsThePublicKey"]
    assert "ManifestPublicKey" in str(rule["Assertions"])


def test_audit_trail_only_when_asked_with_s3_data_events_of_the_registry_prefix(defaults):
    trail_resources = {"AuditTrailBucket", "AuditTrailBucketPolicy", "RegistryTrail"}
    assert not trail_resources & set(deployed_resources(defaults))
    translated = translate({"AuditTrail": "true"})
    resources = deployed_resources(translated)
    assert trail_resources <= set(resources)
    trail = resources["RegistryTrail"]["Properties"]
    assert trail["IsLogging"] is True and trail["EnableLogFileValidation"] is True
    (selector,) = trail["AdvancedEventSelectors"]
    fields = {f["Field"]: f for f in selector["FieldSelectors"]}
    assert fields["eventCategory"]["Equals"] == ["Data"]
    assert fields["resources.type"]["Equals"] == ["AWS::S3::Object"]
    (prefix,) = resolve(fields["resources.ARN"]["StartsWith"], {**REFS, "ModelPrefix": "models"})
    assert prefix == f"arn:aws:s3:::{BUCKET}/models/"
