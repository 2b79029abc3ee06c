"""Registry security in template.yaml (issues 15 and 27), on what CloudFormation deploys: the
AWS::LanguageExtensions step and the real SAM translator (tests/sam_support.py).

moto evaluates bucket policies only partly (an Allow or Deny on "*" principals, no condition
operator but StringEquals), so the claims of docs/security.md's table are checked here with a
small evaluator of the created bucket policy's Deny statements (a Deny wins over any Allow,
whatever a principal's own IAM policies say, root user included, except that S3 always lets
the root user replace the policy itself). It models what this policy uses: Action and
NotAction, Resource, and the condition operators ArnLike/ArnNotLike/ArnNotEquals,
StringNotEquals, Null, Bool, NumericGreaterThan, with IAM's rule that a negated operator on a
key the request does not carry holds. Any other operator fails the test (extend the
evaluator). CloudFormation's references are replaced by example values. The S3 actions come
from the IAM linter's own copy of the service authorization reference (parliament's, in
.venv-iamlint), so "every write" means every S3 action IAM knows that is not a read.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from functools import cache

import pytest

from tests.sam_support import ROOT, deployed_resources, load_template, translate

ACCOUNT = "123456789012"
BUCKET = "stack-modelbucket-abc"
PUBLISHER = f"arn:aws:iam::{ACCOUNT}:role/stack-PublisherRole-XYZ"
ROOT_USER = f"arn:aws:iam::{ACCOUNT}:root"
NAMED = f"arn:aws:iam::{ACCOUNT}:role/release-publisher"
ADMINS = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Admin_*"
ADMIN = ADMINS.replace("*/", "eu-west-1/").replace("_*", "_1a2b")
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/ci-deploy"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/registry-break-glass"
FUNCTION = f"arn:aws:iam::{ACCOUNT}:role/stack-InferenceFunctionRole-ABC"
POWER_USER = f"arn:aws:iam::{ACCOUNT}:role/ci-with-s3-star"  # AdministratorAccess alike
REPLICATION = f"arn:aws:iam::{ACCOUNT}:role/s3-replication"
OUTSIDER = "arn:aws:iam::999999999999:role/aws-reserved/sso.amazonaws.com/x/AWSReservedSSO_Admin_9"

NAMED_SET = {
    "PublisherPrincipalArn": NAMED,
    "RegistryAdminArns": ADMINS,
    "DeployerArns": DEPLOYER,
    "RegistryBreakGlassArn": BREAK_GLASS,
}
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
    "ObjectLockMode": "GOVERNANCE",
    "ObjectLockRetentionDays": "365",
    **NAMED_SET,
}

VERSION_FILE = "models/mnist/1796000000/model.tflite"
POINTER = "models/mnist/latest.json"
AUDIT_RECORD = "models/mnist/audit/pointer/000000000001.json"
SERVED_KEYS = (VERSION_FILE, "models/mnist/1796000000/manifest.json", POINTER, AUDIT_RECORD)
OTHER_REGISTRY_KEY = "models/mnist/notes.txt"


def resolve(node, values):
    """Ref, Fn::GetAtt, Fn::Sub, Fn::Split, Fn::Join, Fn::Select with example values (Fn::If is
    gone already)."""
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
    if set(node) == {"Fn::Join"}:
        sep, items = node["Fn::Join"]
        return sep.join(resolve(items, values))
    if set(node) == {"Fn::Select"}:
        index, items = node["Fn::Select"]
        return resolve(items, values)[int(index)]
    if set(node) == {"Fn::FindInMap"}:
        name, key, attribute = node["Fn::FindInMap"]
        return load_template()["Mappings"][name][key][attribute]
    return {k: resolve(v, values) for k, v in node.items()}


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())  # IAM's * and ? (no [] here)


def arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own."""
    patterns, values = pattern.split(":", 5), value.split(":", 5)
    return len(patterns) == len(values) == 6 and all(
        fnmatch.fnmatchcase(v, p) for p, v in zip(patterns, values, strict=True)
    )


def holds(op: str, keys: dict, context: dict) -> bool:
    """One condition operator block: every key's test holds (IAM ANDs keys, ORs values)."""
    for key, expected in keys.items():
        expected, present = listed(expected), key in context
        actual = context.get(key)
        if op == "ArnLike":
            ok = present and any(arn_like(p, actual) for p in expected)
        elif op == "ArnNotLike":
            ok = not present or not any(arn_like(p, actual) for p in expected)
        elif op == "ArnNotEquals":
            ok = not present or actual not in expected
        elif op == "StringNotEquals":
            ok = not present or actual not in expected
        elif op == "Null":
            ok = (not present) == (expected[0] == "true")
        elif op == "Bool":
            ok = present and actual == expected[0]
        elif op == "NumericGreaterThan":
            ok = present and float(actual) > float(expected[0])
        else:
            raise AssertionError(f"operator {op} not modelled here: extend the evaluator")
        if not ok:
            return False
    return True


def statement_applies(st, action: str, resource: str, context: dict) -> bool:
    if "NotAction" in st:
        if any(matches(a, action) for a in listed(st["NotAction"])):
            return False
    elif not any(matches(a, action) for a in listed(st["Action"])):
        return False
    if not any(matches(r, resource) for r in listed(st["Resource"])):
        return False
    return all(holds(op, keys, context) for op, keys in st.get("Condition", {}).items())


def denied(statements, principal: str, action: str, key: str | None = None, **request) -> bool:
    """Whether a Deny statement of the bucket policy applies to this TLS request (key None:
    the bucket itself). request: condition keys the request carries, s3:if-none-match=...,
    s3:object-lock-mode=..."""
    resource = f"arn:aws:s3:::{BUCKET}" + (f"/{key}" if key is not None else "")
    account = principal.split(":")[4]
    context = {
        "aws:PrincipalArn": principal,
        "aws:PrincipalAccount": account,
        "aws:SecureTransport": "true",
        **{f"s3:{k.replace('_', '-')}": str(v) for k, v in request.items()},
    }
    return any(
        st["Effect"] == "Deny"
        and st["Principal"] == "*"
        and statement_applies(st, action, resource, context)
        for st in statements
    )


@cache
def s3_actions() -> dict[str, tuple[str, list[str]]]:
    """{"s3:Action": (access level, [resource types])} for every S3 action in parliament's IAM
    definition (the service authorization reference)."""
    script = (
        "import json, os, parliament;"
        "d = json.load(open(os.path.join(os.path.dirname(parliament.__file__),"
        " 'iam_definition.json')));"
        "print(json.dumps({'s3:' + p['privilege']: (p['access_level'],"
        " [r['resource_type'].rstrip('*') for r in p['resource_types']]) for s in d"
        " if s['prefix'] == 's3' for p in s['privileges']}))"
    )
    python = ROOT / ".venv-iamlint" / "bin" / "python"
    assert python.exists(), "no .venv-iamlint: run make setup"
    return json.loads(
        subprocess.run([python, "-c", script], check=True, capture_output=True).stdout
    )


def writes_on(resource_type: str) -> list[str]:
    """Every S3 action on that resource type that is not a read or a listing."""
    return sorted(
        a
        for a, (level, types) in s3_actions().items()
        if resource_type in types and level not in ("Read", "List")
    )


def object_writes() -> list[str]:
    return writes_on("object")


def bucket_writes() -> list[str]:
    return writes_on("bucket")


@pytest.fixture(scope="module")
def named():
    """The created bucket with a named publisher, administrators, deployer and break-glass."""
    return bucket_policy(translate(NAMED_SET))


@pytest.fixture(scope="module")
def defaults():
    return translate()


def bucket_policy(translated, values=REFS):
    resources = deployed_resources(translated)
    return resolve(resources["ModelBucketPolicy"]["Properties"]["PolicyDocument"], values)[
        "Statement"
    ]


# --------------------------------------------------------------------------- the bucket itself
CONFIGURATION_CHANGES = [
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketVersioning",
    "s3:PutBucketNotification",
    "s3:DeleteBucket",
]


def test_the_issues_configuration_changes_are_all_s3_actions_iam_knows():
    assert set(CONFIGURATION_CHANGES) <= set(bucket_writes())


@pytest.mark.parametrize(
    "principal", [FUNCTION, POWER_USER, REPLICATION, PUBLISHER, NAMED, BREAK_GLASS, OUTSIDER]
)
def test_nobody_but_root_admins_and_deployers_changes_the_bucket(named, principal):
    for action in bucket_writes():  # every non-read S3 action, the issue's list among them
        assert denied(named, principal, action), (principal, action)
    for read in ("s3:GetBucketPolicy", "s3:ListBucket", "s3:GetBucketObjectLockConfiguration"):
        assert not denied(named, principal, read)  # reads are IAM's to decide


@pytest.mark.parametrize("principal", [ROOT_USER, ADMIN, DEPLOYER])
def test_root_admins_and_deployers_may_change_the_bucket(named, principal):
    for action in CONFIGURATION_CHANGES:
        assert not denied(named, principal, action), (principal, action)


def test_with_nothing_named_only_the_root_user_changes_the_bucket(defaults):
    statements = bucket_policy(defaults)
    assert not denied(statements, ROOT_USER, "s3:PutBucketPolicy")
    for principal in (ADMIN, DEPLOYER, POWER_USER):
        assert denied(statements, principal, "s3:PutBucketPolicy")


def test_another_accounts_principal_is_refused_whatever_the_admin_list_matches():
    wide = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Admin_*"
    statements = bucket_policy(translate({"RegistryAdminArns": wide}), REFS)
    assert not denied(statements, ADMIN, "s3:PutBucketPolicy")
    for action in ("s3:PutBucketPolicy", "s3:PutObject", "s3:DeleteObject"):
        key = None if action == "s3:PutBucketPolicy" else OTHER_REGISTRY_KEY
        assert denied(statements, OUTSIDER, action, key, if_none_match="*")


def test_admin_patterns_are_principals_of_an_account_never_everyone():
    import re as regex

    for parameter in ("RegistryAdminArns", "PublisherPrincipalArn", "SignerPrincipalArn"):
        pattern = regex.compile(load_template()["Parameters"][parameter]["AllowedPattern"])
        assert pattern.fullmatch(ADMINS.split(",")[0]), parameter
        for refused in (
            "*",
            f"arn:aws:iam::{ACCOUNT}:*",
            f"arn:aws:iam::{ACCOUNT}:role/*",
            "arn:aws:iam::*:role/admin",
            f"arn:aws:iam::{ACCOUNT}:root",
        ):
            assert not pattern.fullmatch(refused), (parameter, refused)


# --------------------------------------------------------------------------- the registry's keys
@pytest.mark.parametrize("principal", [FUNCTION, POWER_USER, REPLICATION, DEPLOYER, OUTSIDER])
def test_no_write_action_of_any_kind_reaches_the_registry_but_the_named(named, principal):
    writes = object_writes()
    # the review's misses among them: replication, tagging, restore
    assert {
        "s3:ReplicateObject",
        "s3:ReplicateDelete",
        "s3:PutObjectTagging",
        "s3:DeleteObjectTagging",
        "s3:RestoreObject",
    } <= set(writes)
    for key in (*SERVED_KEYS, OTHER_REGISTRY_KEY):
        for action in writes:
            assert denied(named, principal, action, key, if_none_match="*", if_match="e"), (
                principal,
                action,
                key,
            )
        assert not denied(named, principal, "s3:GetObject", key)
    # outside the registry prefix the bucket policy does not decide (IAM policies do), but for
    # principals of other accounts
    outside = denied(named, principal, "s3:PutObject", "elsewhere/file")
    assert outside == (principal == OUTSIDER)


@pytest.mark.parametrize("principal", [ROOT_USER, ADMIN, BREAK_GLASS])
def test_served_keys_are_the_publishers_alone_even_for_root_and_admins(named, principal):
    for key in SERVED_KEYS:
        for action in ("s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectRetention"):
            assert denied(named, principal, action, key, if_none_match="*", if_match="e")
    # elsewhere under the prefix, the administrators still may
    assert not denied(named, principal, "s3:PutObjectTagging", OTHER_REGISTRY_KEY)


def test_the_publisher_writes_versions_create_only_and_the_pointer_conditionally(named):
    for key in (VERSION_FILE, AUDIT_RECORD):
        assert not denied(
            named, PUBLISHER, "s3:PutObject", key, if_none_match="*", object_lock_mode="GOVERNANCE"
        )
        assert denied(named, PUBLISHER, "s3:PutObject", key)  # unconditional: overwrite
        assert denied(named, PUBLISHER, "s3:PutObject", key, if_match="e")
    assert not denied(named, PUBLISHER, "s3:PutObject", POINTER, if_match="etag")
    assert not denied(named, PUBLISHER, "s3:PutObject", POINTER, if_none_match="*")
    assert denied(named, PUBLISHER, "s3:PutObject", POINTER)
    # nothing else of the served keys: no tagging, no restore, no replication, no delete
    for action in ("s3:PutObjectTagging", "s3:ReplicateObject", "s3:DeleteObject"):
        assert denied(named, PUBLISHER, action, VERSION_FILE)


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:DeleteObjectVersion"])
def test_only_the_break_glass_principal_deletes_served_keys(named, action):
    for key in SERVED_KEYS:  # a delete marker on a locked key, or on latest.json
        for principal in (ROOT_USER, ADMIN, PUBLISHER, POWER_USER):
            assert denied(named, principal, action, key), (principal, key)
        assert not denied(named, BREAK_GLASS, action, key)
        assert not denied(named, BREAK_GLASS, "s3:BypassGovernanceRetention", key)


def test_without_a_break_glass_principal_nobody_deletes_served_keys(defaults):
    statements = bucket_policy(defaults)
    for principal in (ROOT_USER, PUBLISHER, BREAK_GLASS):
        assert denied(statements, principal, "s3:DeleteObject", POINTER)
        assert denied(statements, principal, "s3:DeleteObjectVersion", VERSION_FILE)


def test_with_nothing_named_there_is_no_publisher_and_nobody_writes_served_keys(defaults):
    assert "PublisherRole" not in deployed_resources(defaults)
    statements = bucket_policy(defaults)
    for principal in (ROOT_USER, PUBLISHER, POWER_USER):
        assert denied(statements, principal, "s3:PutObject", VERSION_FILE, if_none_match="*")
        assert denied(statements, principal, "s3:PutObject", POINTER, if_match="e")


def test_locks_only_in_the_registrys_mode_and_for_at_most_its_days(named):
    for action in ("s3:PutObject", "s3:PutObjectRetention"):
        ok = {"if_none_match": "*", "object_lock_mode": "GOVERNANCE"}
        assert not denied(named, PUBLISHER, action, VERSION_FILE, **ok)
        assert not denied(
            named, PUBLISHER, action, VERSION_FILE, **ok, object_lock_remaining_retention_days=365
        )
        assert denied(
            named, PUBLISHER, action, VERSION_FILE, **ok, object_lock_remaining_retention_days=366
        )
        compliance = {**ok, "object_lock_mode": "COMPLIANCE"}
        assert denied(named, PUBLISHER, action, VERSION_FILE, **compliance)
    # a write without a lock (latest.json) carries no lock keys and is not refused for it
    assert not denied(named, PUBLISHER, "s3:PutObject", POINTER, if_match="e")


def test_tls_is_still_required(named):
    (tls,) = [s for s in named if s["Sid"] == "DenyInsecureTransport"]
    assert tls["Action"] == "s3:*" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


# --------------------------------------------------------------------------- who publishes, signs
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
    allows = {sid: s for sid, s in statements.items() if s["Effect"] == "Allow"}
    assert set(allows) == {
        "PublishModelVersions",
        "ReadRegistryBucket",
        "ReadObjectLockConfiguration",
    }
    objects = allows["PublishModelVersions"]
    assert sorted(objects["Action"]) == ["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"]
    assert objects["Resource"] == f"arn:aws:s3:::{BUCKET}/models/mnist/*"
    listing = allows["ReadRegistryBucket"]
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == f"arn:aws:s3:::{BUCKET}"
    # listings only under the model's prefix (HeadBucket carries no prefix)
    assert listing["Condition"] == {"StringLikeIfExists": {"s3:prefix": ["models/mnist/*"]}}
    actions = [a for s in allows.values() for a in listed(s["Action"])]
    assert not [a for a in actions if "Delete" in a or "*" in a or a.startswith("kms:Sign")]
    # and its own bound on locks, for a bucket of your own whose policy is not this stack's
    assert {"NoOtherLocks", "NoOtherLockModes"} <= set(statements)


def test_publisher_policy_with_an_own_bucket_names_that_bucket():
    translated = translate({"BucketName": "own-bucket"})
    statements = publisher_statements(translated)
    assert (
        statements["PublishModelVersions"]["Resource"] == "arn:aws:s3:::own-bucket/models/mnist/*"
    )
    assert "ModelBucketPolicy" not in deployed_resources(translated)


def trust(translated, values=REFS):
    role = deployed_resources(translated)["PublisherRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "PublisherPolicy"}]
    return {s["Sid"]: s for s in resolve(role["AssumeRolePolicyDocument"], values)["Statement"]}


def test_publisher_role_trusts_only_the_named_principal_of_this_account():
    statements = trust(translate({"PublisherPrincipalArn": NAMED}))
    (only,) = statements.values()
    assert only["Action"] == "sts:AssumeRole"
    assert only["Principal"] == {"AWS": ROOT_USER}  # this account, and then only ...
    assert only["Condition"] == {"ArnLike": {"aws:PrincipalArn": NAMED}}  # ... the named one


def test_another_account_needs_the_external_id():
    other = "arn:aws:iam::210987654321:role/ci-publisher"
    values = {**REFS, "PublisherPrincipalArn": other, "PublisherExternalId": "xid-7f3a"}
    statements = trust(
        translate({"PublisherPrincipalArn": other, "PublisherExternalId": "xid-7f3a"}), values
    )
    cross = statements["NamedPrincipalWithTheExternalId"]
    assert cross["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert cross["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": other},
        "StringEquals": {"sts:ExternalId": "xid-7f3a"},
    }
    # the statement without an external id trusts this account's principals only
    assert statements["NamedPrincipalOfThisAccount"]["Principal"] == {"AWS": ROOT_USER}


@pytest.mark.parametrize(
    "provider, subject, audience",
    [
        (
            "token.actions.githubusercontent.com",
            "repo:o/models:environment:prod",
            "sts.amazonaws.com",
        ),
        ("gitlab.com", "project_path:g/models:ref_type:branch:ref:main", "https://gitlab.com"),
    ],
)
def test_ci_assumes_the_role_with_its_oidc_token_of_one_subject(provider, subject, audience):
    overrides = {
        "PublisherOidcProvider": provider,
        "PublisherOidcSubject": subject,
        "PublisherOidcAudience": audience,
    }
    (statement,) = trust(translate(overrides), {**REFS, **overrides}).values()
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}"
    }
    assert statement["Condition"] == {
        "StringEquals": {f"{provider}:aud": audience},
        "StringLike": {f"{provider}:sub": subject},
    }
    rules = load_template()["Rules"]["OidcNeedsASubject"]
    assert "PublisherOidcSubject" in json.dumps(rules)


def test_signing_is_a_role_of_its_own_bound_to_the_registrys_algorithm():
    from mlcore.model_signature import KMS_SIGNING_ALGORITHM as SIGNATURE_ALGORITHM

    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/mrk-1"
    signer = f"arn:aws:iam::{ACCOUNT}:role/release-signer"
    overrides = {
        "ManifestSigningKeyArn": key,
        "ManifestPublicKey": "TUlJQg==",
        "SignerPrincipalArn": signer,
        "PublisherPrincipalArn": NAMED,
    }
    translated = translate(overrides)
    values = {**REFS, **overrides}
    role = resolve(deployed_resources(translated)["SignerRole"]["Properties"], values)
    ((policy,),) = [[p["PolicyDocument"] for p in role["Policies"]]]
    (sign, public) = policy["Statement"]
    assert (sign["Action"], sign["Resource"]) == ("kms:Sign", key)
    assert (public["Action"], public["Resource"], "Condition" in public) == (
        "kms:GetPublicKey",
        key,
        False,
    )
    assert sign["Condition"] == {
        "StringEquals": {"kms:SigningAlgorithm": SIGNATURE_ALGORITHM, "kms:MessageType": "RAW"}
    }
    # one fact: the template's mapping is the code's algorithm
    assert load_template()["Mappings"]["Signing"]["Manifest"]["Algorithm"] == SIGNATURE_ALGORITHM
    (assume,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert assume["Condition"] == {"ArnLike": {"aws:PrincipalArn": signer}}
    # the publisher cannot sign
    assert "kms:Sign" not in json.dumps(publisher_statements(translated, values))
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MANIFEST_PUBLIC_KEY"] == {"Ref": "ManifestPublicKey"}
    rule = json.dumps(load_template()["Rules"]["SigningNeedsThePublicKey"])
    assert "ManifestPublicKey" in rule and "SignerPrincipalArn" in rule


def test_the_function_stays_read_only(defaults):
    resources = deployed_resources(defaults)
    for role in ("InferenceFunctionRole", "MonitorFunctionRole"):
        (inline,) = resources[role]["Properties"]["Policies"]
        actions = {a for s in inline["PolicyDocument"]["Statement"] for a in listed(s["Action"])}
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


def test_kms_grants_only_through_s3_for_the_registrys_objects():
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    def encryption(translated):
        props = deployed_resources(translated)["ModelBucket"]["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        return rule

    def kms_grants(translated, role):
        (inline,) = deployed_resources(translated)[role]["Properties"]["Policies"]
        statements = resolve(inline["PolicyDocument"], {**REFS, "ModelKmsKeyArn": key})
        return [s for s in statements["Statement"] if "kms" in str(s["Action"])]

    default = translate()
    assert encryption(default)["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert not kms_grants(default, "InferenceFunctionRole")
    assert "EncryptWithTheRegistryKey" not in publisher_statements(default)

    with_key = translate({"ModelKmsKeyArn": key})
    assert encryption(with_key)["BucketKeyEnabled"] is True
    condition = {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": [
                f"arn:aws:s3:::{BUCKET}",  # with S3 Bucket Keys
                f"arn:aws:s3:::{BUCKET}/models/mnist/*",  # without
            ]
        },
    }
    for role in ("InferenceFunctionRole", "MonitorFunctionRole"):
        (grant,) = kms_grants(with_key, role)
        assert (grant["Action"], grant["Resource"]) == ("kms:Decrypt", key)
        assert grant["Condition"] == condition
    publisher = publisher_statements(with_key, {**REFS, "ModelKmsKeyArn": key})
    grant = publisher["EncryptWithTheRegistryKey"]
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert (grant["Resource"], grant["Condition"]) == (key, condition)


# --------------------------------------------------------------------------- what is recorded
def test_audit_trail_records_the_registry_the_captures_and_configuration_changes(defaults):
    trail_resources = {"AuditTrailBucket", "AuditTrailBucketPolicy", "RegistryTrail"}
    assert not trail_resources & set(deployed_resources(defaults))
    translated = translate({"AuditTrail": "true"})
    resources = deployed_resources(translated)
    assert trail_resources <= set(resources)
    trail = resources["RegistryTrail"]["Properties"]
    assert trail["IsLogging"] is True and trail["EnableLogFileValidation"] is True
    values = {**REFS, "CaptureBucket.Arn": "arn:aws:s3:::stack-capturebucket-x"}
    selectors = {
        s["Name"]: s["FieldSelectors"] for s in resolve(trail["AdvancedEventSelectors"], values)
    }
    fields = {name: {f["Field"]: f for f in fs} for name, fs in selectors.items()}
    registry, captures = fields["Registry objects"], fields["Captured requests"]
    assert registry["resources.ARN"]["StartsWith"] == [f"arn:aws:s3:::{BUCKET}/models/"]
    assert captures["resources.ARN"]["StartsWith"] == ["arn:aws:s3:::stack-capturebucket-x/"]
    for data in (registry, captures):
        assert data["eventCategory"]["Equals"] == ["Data"]
    management = fields["Write management events"]
    assert management["eventCategory"]["Equals"] == ["Management"]
    assert management["readOnly"]["Equals"] == ["false"]
    # on in prod
    import tomllib

    with (ROOT / "samconfig.toml").open("rb") as f:
        prod = tomllib.load(f)["prod"]["deploy"]["parameters"]["parameter_overrides"]
    assert "AuditTrail=true" in prod


def test_nobody_deletes_audit_logs_and_only_admins_change_their_bucket():
    translated = translate({"AuditTrail": "true", **NAMED_SET})
    policy = deployed_resources(translated)["AuditTrailBucketPolicy"]["Properties"]
    values = {**REFS, "AuditTrailBucket.Arn": f"arn:aws:s3:::{BUCKET}", "AuditTrailBucket": BUCKET}
    statements = resolve(policy["PolicyDocument"], values)["Statement"]
    log = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2027/01/01/x.json.gz"
    for principal in (ROOT_USER, ADMIN, POWER_USER, BREAK_GLASS):
        assert denied(statements, principal, "s3:DeleteObject", log)
        assert denied(statements, principal, "s3:DeleteObjectVersion", log)
    for action in ("s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "s3:DeleteBucket"):
        assert denied(statements, POWER_USER, action)
        assert not denied(statements, ADMIN, action)


def test_configuration_changes_of_the_registry_bucket_reach_the_alarm_topic():
    overrides = {"AuditTrail": "true", "AlarmEmail": "ops@example.com"}
    resources = deployed_resources(translate(overrides))
    rule = resources["RegistryConfigurationChanged"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    names = set(pattern["detail"]["eventName"])
    # CloudTrail's names of the issue's changes: policy, lifecycle, replication, Object Lock
    assert {
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "PutBucketLifecycle",
        "DeleteBucketLifecycle",
        "PutBucketReplication",
        "DeleteBucketReplication",
        "PutObjectLockConfiguration",
    } <= names
    assert resolve(
        pattern["detail"]["requestParameters"]["bucketName"], {**REFS, "AuditTrailBucket": "audit"}
    ) == [BUCKET, "audit"]
    assert rule["Targets"] == [{"Id": "alarm-topic", "Arn": {"Ref": "AlarmTopic"}}]
    topic_policy = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]
    events = [
        s
        for s in topic_policy["Statement"]
        if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    (events,) = events
    assert events["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["RegistryConfigurationChanged", "Arn"]}}
    }
    # without the trail EventBridge would get no such event: no rule then
    assert "RegistryConfigurationChanged" not in deployed_resources(
        translate({"AlarmEmail": "ops@example.com"})
    )
