"""`make deploy ENV=...`: `sam deploy --config-env ENV` with the parameter overrides it needs.

`sam deploy --parameter-overrides` on the command line replaces the config environment's
`parameter_overrides` (samconfig.toml) rather than adding to them, so this prints both: the
environment's, then PARAMS, then ConfigurationDigest, a digest of all of them. The digest is
what makes a changed parameter publish a new version of the inference function: SAM hashes
parameter Refs unresolved (aws/serverless-application-model#3820) but resolves the one
parameter the template gives to AutoPublishCodeSha256.

Before that, what the template leaves to the deployer and `make deploy` can read from AWS, when
PARAMS does not say it (account_defaults): the deploying principal as DeployerArns (the bucket
policy lets it change the registry bucket's configuration through CloudFormation) and as
PublisherPrincipalArn (who may assume PublisherRole: a single-account user publishes as
themselves), and ConfigureApiGatewayLogging=true only in an account and region whose API
Gateway has no CloudWatch role yet (the template never overwrites one by default).
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def environment_overrides(config: dict, env: str) -> list[str]:
    try:
        section = config[env]
    except KeyError:
        envs = sorted(k for k in config if isinstance(config[k], dict))
        raise SystemExit(
            f"samconfig.toml has no environment {env!r}; it has: {', '.join(envs)}"
        ) from None
    value = section.get("deploy", {}).get("parameters", {}).get("parameter_overrides", [])
    return shlex.split(value) if isinstance(value, str) else list(value)


def overrides(config: dict, env: str, extra: list[str]) -> list[str]:
    """The environment's overrides, then `extra` (later wins), then the digest of them all."""
    merged: dict[str, str] = {}
    for item in environment_overrides(config, env) + extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"parameter override {item!r} is not Key=Value")
        merged[key] = value
    merged.pop("ConfigurationDigest", None)
    canonical = "\n".join(f"{k}={merged[k]}" for k in sorted(merged))
    digest = hashlib.sha256(f"{env}\n{canonical}".encode()).hexdigest()[:32]
    return [f"{k}={v}" for k, v in merged.items()] + [f"ConfigurationDigest={digest}"]


def principal_arn(caller_arn: str, role_arn_of=None) -> str:
    """The IAM ARN policies see as aws:PrincipalArn for the caller STS names: the role's own ARN
    (with its path, which the session ARN lacks: role_arn_of(name) asks IAM) for an assumed
    role, the caller's ARN as it is otherwise (user, root, federated user)."""
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        name = parts[5].split("/")[1]
        if role_arn_of is not None:
            return role_arn_of(name)
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
    return caller_arn


def account_defaults(
    given: dict[str, str], principal: str | None, account_has_log_role: bool | None
) -> list[str]:
    """Key=Value overrides for what `given` (the environment's and PARAMS) leaves unsaid."""
    extra = []
    if principal and "DeployerArns" not in given:
        extra.append(f"DeployerArns={principal}")
    # The root user cannot assume a role; an IAM user or role can be named as the publisher.
    can_assume = bool(principal) and (":role/" in principal or ":user/" in principal)
    if can_assume and not given.keys() & {"PublisherPrincipalArn", "PublisherOidcProvider"}:
        extra.append(f"PublisherPrincipalArn={principal}")
    if account_has_log_role is False and "ConfigureApiGatewayLogging" not in given:
        extra.append("ConfigureApiGatewayLogging=true")
    return extra


def read_account() -> tuple[str | None, bool | None]:
    """(the deploying principal's ARN, whether API Gateway has a CloudWatch role here), None for
    what AWS does not answer (no credentials: sam deploy then says so itself)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    principal = has_role = None
    try:
        caller = boto3.client("sts").get_caller_identity()["Arn"]
        iam = boto3.client("iam")
        principal = principal_arn(caller, lambda name: iam.get_role(RoleName=name)["Role"]["Arn"])
    except (BotoCoreError, ClientError) as exc:
        print(
            f"note: the deploying principal is unknown ({exc}); name it in PARAMS", file=sys.stderr
        )
    try:
        has_role = bool(boto3.client("apigateway").get_account().get("cloudwatchRoleArn"))
    except (BotoCoreError, ClientError):
        pass
    return principal, has_role


def given_overrides(config: dict, env: str, params: list[str]) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in environment_overrides(config, env) + params)


def sam_deploy_command(config: dict, env: str, params: list[str], sam: str = "sam") -> list[str]:
    return [
        sam,
        "deploy",
        "--config-env",
        env,
        "--parameter-overrides",
        *overrides(config, env, params),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "samconfig.toml")
    parser.add_argument("--env", required=True, help="a samconfig.toml environment: dev, prod")
    parser.add_argument("--sam", default="sam", help="the sam executable")
    parser.add_argument("--print", action="store_true", help="print the command, run nothing")
    parser.add_argument("params", nargs="*", help="Key=Value parameter overrides (PARAMS)")
    args = parser.parse_args(argv)
    with args.config.open("rb") as f:
        config = tomllib.load(f)
    params = list(args.params)
    if not args.print:
        principal, has_role = read_account()
        params += account_defaults(given_overrides(config, args.env, params), principal, has_role)
    command = sam_deploy_command(config, args.env, params, args.sam)
    print(shlex.join(command), flush=True)
    if args.print:
        return 0
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
