"""template.yaml's batch jobs, checked for what a user of the deployed stack would notice: the
second function shares the inference package and layer; each role may do exactly what the
issue lists (list and read the input folder, write the output folder, invoke the batch
function, follow its own child executions, KMS through S3 where a key is named) and nothing
more; the state machine's definition file is a Distributed Map whose every placeholder the
template fills; results never go to the model registry."""

from __future__ import annotations

import json
import re

import pytest

from tests.sam_support import FUNCTION_DIR, ROOT, deployed_resources, load_template, translate
from tests.unit.test_deploy_template import rules_accept
from tests.unit.test_template_iam_lint import policy_documents

DEFINITION = ROOT / "statemachine" / "batch.asl.json"
S3 = "arn:aws:s3:::"
STATES = "arn:aws:states:us-east-1:123456789012"
KEY = "arn:aws:kms:us-east-1:123456789012:key/9abcdef0-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def template():
    return load_template()


def grants(set_name: str, role: str) -> dict[str, tuple]:
    """Sid -> (actions, resources, condition) of a role's one inline policy, as deployed."""
    document = policy_documents(set_name)[f"{role}.Policies"]
    found = {}
    for st in document["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        found[st["Sid"]] = (sorted(actions), sorted(resources), st.get("Condition"))
    return found


def test_the_batch_function_is_the_inference_package_with_another_handler(template):
    resources = template["Resources"]
    batch, inference = (resources[n]["Properties"] for n in ("BatchFunction", "InferenceFunction"))
    assert batch["CodeUri"] == inference["CodeUri"] == "functions/inference"
    assert batch["Handler"] == "batch.lambda_handler"
    assert (FUNCTION_DIR / "batch.py").is_file()
    assert resources["BatchFunction"]["Metadata"]["BuildMethod"] == "makefile"
    assert "build-BatchFunction" in (FUNCTION_DIR / "Makefile").read_text()
    assert batch["Layers"] == [{"Ref": "RuntimeLayer"}]
    # its own timeout and service name (its metrics apart from the API's); nothing else of its own
    assert batch["Timeout"] == {"Ref": "BatchFunctionTimeout"}
    assert batch["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": {"Fn::Sub": "${AWS::StackName}-batch"}
    }
    assert not {"MemorySize", "Runtime", "Architectures", "ReservedConcurrentExecutions"} & set(
        batch
    )


def test_every_variable_the_batch_function_reads_is_set_by_the_template(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    read = set(re.findall(r'"(BATCH_[A-Z_]+)"', (FUNCTION_DIR / "config.py").read_text()))
    assert read == {v for v in env if v.startswith("BATCH_")} and len(read) == 5


def test_the_batch_functions_role_reads_the_model_and_the_input_and_writes_the_output():
    assert grants("defaults", "BatchFunctionRole") == {
        "ReadModelRegistry": (
            ["s3:GetObject"],
            [f"{S3}stack-modelbucket-abc123/models/mnist/*"],
            None,
        ),
        "ReadBatchInput": (["s3:GetObject"], [f"{S3}stack-batchbucket-abc123/input/*"], None),
        "ListBatchInput": (
            ["s3:ListBucket"],
            [f"{S3}stack-batchbucket-abc123"],
            {"StringLike": {"s3:prefix": "input/*"}},
        ),
        "WriteBatchResults": (
            ["s3:PutObject"],
            [f"{S3}stack-batchbucket-abc123/results/*"],
            None,
        ),
    }


def test_with_buckets_and_a_key_of_your_own_kms_is_used_through_s3_for_them_only():
    found = grants("own-bucket-kms-signed-github", "BatchFunctionRole")
    assert found["ReadBatchInput"][1] == [f"{S3}own-photos-bucket/*"]
    assert found["ListBatchInput"] == (["s3:ListBucket"], [f"{S3}own-photos-bucket"], None)
    assert found["WriteBatchResults"][1] == [f"{S3}own-results-bucket/results/*"]
    actions, keys, condition = found["DecryptBatchInput"]
    assert (actions, keys) == (["kms:Decrypt"], [KEY])
    assert condition["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    assert condition["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [
        f"{S3}own-photos-bucket",
        f"{S3}own-photos-bucket/*",
    ]
    actions, keys, condition = found["EncryptBatchResults"]
    assert (actions, keys) == (["kms:GenerateDataKey"], [KEY])
    assert condition["StringLike"]["kms:EncryptionContext:aws:s3:arn"][1].startswith(
        f"{S3}own-results-bucket/results/"
    )
    assert "DecryptBatchInput" not in grants("defaults", "BatchFunctionRole")


def test_the_state_machines_role_does_what_the_definition_does_and_nothing_more():
    assert grants("defaults", "BatchStateMachineRole") == {
        "InvokeTheBatchFunction": (
            ["lambda:InvokeFunction"],
            ["arn:aws:lambda:us-east-1:123456789012:function:stack-batchfunction-abc123"],
            None,
        ),
        "ListBatchInput": (
            ["s3:ListBucket"],
            [f"{S3}stack-batchbucket-abc123"],
            {"StringLike": {"s3:prefix": "input/*"}},
        ),
        "WriteMapRunSummary": (
            [
                "s3:AbortMultipartUpload",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            [f"{S3}stack-batchbucket-abc123/results/*"],
            None,
        ),
        "StartChildExecutions": (
            ["states:StartExecution"],
            [f"{STATES}:stateMachine:stack-batch"],
            None,
        ),
        "FollowChildExecutions": (
            ["states:DescribeExecution", "states:StopExecution"],
            [f"{STATES}:execution:stack-batch/*:*", f"{STATES}:express:stack-batch/*:*:*"],
            None,
        ),
    }
    kms = grants("own-bucket-kms-signed-github", "BatchStateMachineRole")["EncryptMapRunSummary"]
    assert kms[:2] == (["kms:Decrypt", "kms:GenerateDataKey"], [KEY])


def test_sam_adds_no_permission_of_its_own_to_the_state_machines_role():
    role = deployed_resources(translate())["BatchStateMachineRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [] and len(role["Policies"]) == 1
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": ["states.amazonaws.com"]}]


def test_the_definition_is_a_distributed_map_over_the_input_prefix(template):
    definition = json.loads(DEFINITION.read_text())
    score = definition["States"]["Score"]
    assert score["Type"] == "Map"
    assert score["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "EXPRESS",
    }
    assert score["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert score["ItemReader"]["Parameters"]["Bucket"] == "${InputBucket}"
    assert score["ItemBatcher"]["MaxItemsPerBatchPath"] == "$.settings.batch_size"
    assert score["MaxConcurrencyPath"] == "$.settings.max_concurrency"
    assert score["ToleratedFailurePercentagePath"] == "$.settings.tolerated_failure_percentage"
    assert score["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert score["ResultWriter"]["Parameters"]["Bucket"] == "${OutputBucket}"
    tasks = [definition["States"]["Job"], score["ItemProcessor"]["States"]["ScoreBatch"]]
    for task in tasks:
        assert task["Resource"] == "arn:aws:states:::lambda:invoke"
        assert task["Parameters"]["FunctionName"] == "${BatchFunctionArn}"
    # every placeholder is filled by the template, and every substitution is used
    placeholders = set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text()))
    machine = template["Resources"]["BatchStateMachine"]["Properties"]
    assert set(machine["DefinitionSubstitutions"]) == placeholders
    assert machine["DefinitionUri"] == "statemachine/batch.asl.json"
    assert machine["Name"] == {"Fn::Sub": "${AWS::StackName}-batch"}  # the role names it


def test_results_never_go_to_the_model_registry(template):
    assert rules_accept(template)
    assert rules_accept(template, BucketName="registry", BatchOutputBucketName="results")
    assert not rules_accept(template, BucketName="registry", BatchOutputBucketName="registry")
    deployed = deployed_resources(translate())
    assert "BatchBucket" in deployed  # both buckets left empty: the stack's own
    own = deployed_resources(translate(PARAMETERS_OWN))
    assert "BatchBucket" not in own


PARAMETERS_OWN = {"BatchInputBucketName": "photos", "BatchOutputBucketName": "results"}


def test_the_stacks_batch_bucket_is_encrypted_private_and_tls_only(template):
    bucket = template["Resources"]["BatchBucket"]
    assert bucket["Condition"] == "CreateBatchBucket"
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["Fn::If"]
    assert encryption[0] == "UseBatchKmsKey"
    policy = template["Resources"]["BatchBucketPolicy"]["Properties"]["PolicyDocument"]
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
