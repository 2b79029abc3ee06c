"""`make outputs` and `make publisher-credentials` (local/stack.py) against moto's AWS: a
CloudFormation stack with the template's output names, a real API key, a role to assume."""

from __future__ import annotations

import json
import subprocess
import tomllib

import boto3
import pytest
from moto import mock_aws

from local import stack
from tests.sam_support import ROOT, load_template

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch):
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def deploy_stack(session, name: str, outputs: dict[str, str]) -> None:
    """A stack whose outputs carry the given values (a resource is needed; outputs are literal)."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def config():
    with (ROOT / "samconfig.toml").open("rb") as f:
        return tomllib.load(f)


def test_the_exported_outputs_are_outputs_of_the_template():
    declared = set(load_template()["Outputs"])
    assert set(stack.EXPORTED_OUTPUTS) | {"ModelRegistryUri", "ApiKeyId"} <= declared


def test_each_environment_names_its_stack():
    assert stack.stack_name(config(), "dev") == "serverless-ml-dev"
    assert stack.stack_name(config(), "prod") == "serverless-ml-prod"
    with pytest.raises(stack.StackError, match="no environment 'staging'; it has: .*dev.*prod"):
        stack.stack_name(config(), "staging")


def test_outputs_become_the_makefile_variables_with_the_api_key_value(aws):
    value = "a secret api key value, 36 chars"
    key = aws.client("apigateway").create_api_key(name="k", enabled=True, value=value)
    registry = "s3://reg-bucket/models/shapes/"
    deploy_stack(
        aws,
        "serverless-ml-dev",
        {
            "ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/dev",
            "ModelBucketName": "reg-bucket",
            "ModelRegistryUri": registry,
            "ObjectLockMode": "GOVERNANCE",
            "ObjectLockRetentionDays": "1",
            "ApiKeyId": key["id"],
            "PublisherRoleArn": "arn:aws:iam::123456789012:role/pub",
        },
    )
    lines = stack.run("outputs", "dev", ROOT / "samconfig.toml", aws).splitlines()
    # what a shell makes of the lines
    shown = 'printf "%s|" "$BUCKET" "$PREFIX" "$NAME" "$LOCK_DAYS" "$API_KEY" "$URL"'
    script = "\n".join([*lines, shown])
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert shell.stdout.split("|")[:6] == [
        "reg-bucket",
        "models",
        "shapes",
        "1",
        value,
        "https://abc.execute-api.eu-west-1.amazonaws.com/dev",
    ]
    assert "export STACK=serverless-ml-dev" in lines


def test_iam_mode_exports_no_api_key(aws):
    deploy_stack(aws, "serverless-ml-prod", {"ApiUrl": "https://x/prod"})
    out = stack.run("outputs", "prod", ROOT / "samconfig.toml", aws)
    assert "API_KEY" not in out and "export API_URL=https://x/prod" in out.splitlines()


def test_a_missing_stack_says_to_deploy_it_or_set_the_region(aws):
    with pytest.raises(stack.StackError, match="no stack serverless-ml-dev in eu-west-1: deploy"):
        stack.run("outputs", "dev", ROOT / "samconfig.toml", aws)


def test_publisher_credentials_are_the_assumed_roles_as_env_words(aws):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = aws.client("iam").create_role(RoleName="pub", AssumeRolePolicyDocument=json.dumps(trust))
    deploy_stack(aws, "serverless-ml-dev", {"PublisherRoleArn": role["Role"]["Arn"]})
    printed = stack.run("publisher-credentials", "dev", ROOT / "samconfig.toml", aws)
    # as `P=$(make -s publisher-credentials) && env $P ...` passes them: split on white space
    shell = subprocess.run(
        ["bash", "-c", 'P="$1"; env -i $P /usr/bin/env', "-", printed],
        capture_output=True,
        text=True,
        check=True,
    )
    assigned = dict(line.split("=", 1) for line in shell.stdout.splitlines())
    assert set(assigned) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert assigned["AWS_ACCESS_KEY_ID"] != "testing" and all(assigned.values())


def test_the_cli_without_a_region_says_which_variable_to_set(monkeypatch, capsys):
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert stack.main(["outputs", "--env", "dev"]) == 2
    assert "export AWS_DEFAULT_REGION=" in capsys.readouterr().err
