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
