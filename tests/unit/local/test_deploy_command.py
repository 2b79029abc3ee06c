"""`make deploy ENV=...` (local/deploy.py) over the real samconfig.toml."""

from __future__ import annotations

import tomllib

import pytest

from local import deploy
from tests.sam_support import ROOT, load_template


@pytest.fixture(scope="module")
def config():
    with (ROOT / "samconfig.toml").open("rb") as f:
        return tomllib.load(f)


def params(command):
    i = command.index("--parameter-overrides")
    return dict(item.split("=", 1) for item in command[i + 1 :])


def test_each_environment_deploys_its_own_stack_with_its_settings(config):
    dev = deploy.sam_deploy_command(config, "dev", [])
    prod = deploy.sam_deploy_command(config, "prod", [])
    assert dev[:4] == ["sam", "deploy", "--config-env", "dev"]
    assert (
        config["dev"]["global"]["parameters"]["stack_name"]
        != (config["prod"]["global"]["parameters"]["stack_name"])
    )
    assert params(dev)["DeploymentType"] == "AllAtOnce"
    p = params(prod)
    assert p["DeploymentType"].startswith("Canary")
    assert p["SnapStart"] == "true" and int(p["ReservedConcurrency"]) > 0
    assert p["ProvisionedConcurrency"] == "0"
    declared = set(load_template()["Parameters"])
    for command in (dev, prod):
        assert set(params(command)) <= declared
    for env in ("dev", "prod"):
        caps = config[env]["deploy"]["parameters"]["capabilities"].split()
        assert "CAPABILITY_AUTO_EXPAND" in caps  # AWS::LanguageExtensions is a macro
        assert "region" not in config[env]["deploy"]["parameters"]  # the shell's, set once


def test_the_digest_changes_with_any_value_and_params_win(config):
    base = params(deploy.sam_deploy_command(config, "prod", []))
    changed = params(deploy.sam_deploy_command(config, "prod", ["MemorySize=2048"]))
    assert changed["MemorySize"] == "2048"
    assert changed["ConfigurationDigest"] != base["ConfigurationDigest"]
    again = params(deploy.sam_deploy_command(config, "prod", []))
    assert again["ConfigurationDigest"] == base["ConfigurationDigest"]
    overridden = params(deploy.sam_deploy_command(config, "prod", ["SnapStart=false"]))
    assert overridden["SnapStart"] == "false"


def test_an_unknown_environment_names_the_known_ones(config):
    with pytest.raises(SystemExit, match="dev, prod"):
        deploy.sam_deploy_command(config, "staging", [])


def test_sam_reads_both_environments():
    """SAM CLI's own reader of samconfig.toml (lists of overrides included)."""
    from samcli.lib.config.samconfig import SamConfig

    samconfig = SamConfig(str(ROOT))
    for env in ("dev", "prod"):
        deploy_params = samconfig.get_all(["deploy"], "parameters", env=env)
        assert deploy_params["parameter_overrides"]
        assert samconfig.get_all(["deploy"], "parameters", env=env)["resolve_s3"] is True


def test_the_deploying_principal_is_named_unless_params_name_someone():
    role = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1"
    extra = deploy.account_defaults({}, role, True)
    assert extra == [f"DeployerArns={role}", f"PublisherPrincipalArn={role}"]
    given = {"PublisherPrincipalArn": "arn:aws:iam::123456789012:role/ci", "DeployerArns": "x"}
    assert deploy.account_defaults(given, role, True) == []
    # CI by OIDC publishes: the deployer is not made a publisher too
    oidc = {"PublisherOidcProvider": "token.actions.githubusercontent.com"}
    assert deploy.account_defaults(oidc, role, True) == [f"DeployerArns={role}"]
    # the root user cannot assume a role: it deploys, nobody is named publisher for it
    root = "arn:aws:iam::123456789012:root"
    assert deploy.account_defaults({}, root, True) == [f"DeployerArns={root}"]
    assert deploy.account_defaults({}, None, None) == []


def test_api_gateway_logging_is_set_up_only_where_the_account_has_no_role():
    assert "ConfigureApiGatewayLogging=true" in deploy.account_defaults({}, None, False)
    assert deploy.account_defaults({}, None, True) == []  # never overwrite an existing role
    assert deploy.account_defaults({}, None, None) == []  # unknown: the template's default
    given = {"ConfigureApiGatewayLogging": "false"}
    assert deploy.account_defaults(given, None, False) == []
    assert load_template()["Parameters"]["ConfigureApiGatewayLogging"]["Default"] == "false"


def test_an_assumed_role_session_is_named_by_its_role_with_the_path_iam_gives():
    session = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_1/alice@example.com"
    full = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1"
    assert deploy.principal_arn(session, {"AWSReservedSSO_Admin_1": full}.get) == full
    assert deploy.principal_arn(session) == (
        "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_1"
    )
    user = "arn:aws:iam::123456789012:user/ops/bob"
    assert deploy.principal_arn(user, lambda name: "never asked") == user


def test_the_named_principals_are_values_the_template_accepts():
    import re

    parameters = load_template()["Parameters"]
    role = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1"
    for value, parameter in (
        (role, "PublisherPrincipalArn"),
        (role, "DeployerArns"),
        ("arn:aws:iam::123456789012:root", "DeployerArns"),
        ("arn:aws:sts::123456789012:federated-user/bob", "DeployerArns"),
    ):
        assert re.fullmatch(parameters[parameter]["AllowedPattern"], value), (parameter, value)
