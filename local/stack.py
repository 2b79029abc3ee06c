"""The deployed stack of a samconfig.toml environment, read with boto3 (no aws CLI needed).

    python -m local.stack outputs --env dev                # `make outputs`: shell exports
    python -m local.stack publisher-credentials --env dev  # `make publisher-credentials`

`outputs` prints the stack's outputs as `export NAME=value` lines named as the Makefile's
variables, so that `OUTPUTS=$(make -s outputs) && eval "$OUTPUTS"` points every later
`make publish`, `make status`, `make smoke`... of that shell at the stack: BUCKET, PREFIX, NAME,
LOCK_MODE and LOCK_DAYS (a publish then locks for as long as the stack allows), API_URL and URL,
API_KEY (the key's value, API_KEY mode), and CAPTURE_BUCKET, PUBLISHER_ROLE_ARN, DASHBOARD,
STACK for the guide's steps.
`publisher-credentials` prints `AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
AWS_SESSION_TOKEN=...` of the stack's PublisherRole (one hour), for
`P=$(make -s publisher-credentials) && env $P make publish` (the `&&`: a failure stops there
instead of publishing with the caller's own credentials).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# stack output -> the variable it is exported as (the Makefile's name where it has one)
EXPORTED_OUTPUTS = {
    "ApiUrl": "API_URL",
    "ModelBucketName": "BUCKET",
    "ObjectLockMode": "LOCK_MODE",
    "ObjectLockRetentionDays": "LOCK_DAYS",
    "CaptureBucketName": "CAPTURE_BUCKET",
    "PublisherRoleArn": "PUBLISHER_ROLE_ARN",
    "DashboardName": "DASHBOARD",
}


class StackError(Exception):
    """A failure the user can act on; main() prints it without a traceback."""


def stack_name(config: dict[str, Any], env: str) -> str:
    """The stack samconfig.toml's environment deploys (its global, else deploy, stack_name)."""
    section = config.get(env)
    if not isinstance(section, dict):
        envs = sorted(k for k, v in config.items() if isinstance(v, dict))
        raise StackError(f"samconfig.toml has no environment {env!r}; it has: {', '.join(envs)}")
    for command in ("global", "deploy"):
        name = section.get(command, {}).get("parameters", {}).get("stack_name")
        if name:
            return name
    raise StackError(f"samconfig.toml's environment {env!r} names no stack_name")


def stack_outputs(cloudformation: Any, name: str) -> dict[str, str]:
    from botocore.exceptions import ClientError

    try:
        (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            region = cloudformation.meta.region_name
            raise StackError(
                f"no stack {name} in {region}: deploy it first (make deploy), or set "
                "AWS_DEFAULT_REGION to the region it was deployed in"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def exports(stack: str, outputs: dict[str, str], api_key: str | None) -> list[str]:
    """`export NAME=value` lines, values shell-quoted, in a fixed order."""
    values = {"STACK": stack}
    values |= {var: outputs[key] for key, var in EXPORTED_OUTPUTS.items() if key in outputs}
    if "API_URL" in values:
        values["URL"] = values["API_URL"]  # make smoke's variable
    # s3://BUCKET/PREFIX/NAME/: what make publish, status, promote... act on
    uri = outputs.get("ModelRegistryUri", "")
    if uri.startswith("s3://"):
        _bucket, _, rest = uri[len("s3://") :].partition("/")
        prefix, _, name = rest.rstrip("/").rpartition("/")
        values |= {"PREFIX": prefix, "NAME": name}
    if api_key is not None:
        values["API_KEY"] = api_key
    return [f"export {var}={shlex.quote(value)}" for var, value in values.items()]


def api_key_value(apigateway: Any, outputs: dict[str, str]) -> str | None:
    """The API key's value (API_KEY mode), None in IAM mode (no ApiKeyId output)."""
    key_id = outputs.get("ApiKeyId")
    if not key_id:
        return None
    return apigateway.get_api_key(apiKey=key_id, includeValue=True)["value"]


def publisher_credentials(sts: Any, outputs: dict[str, str]) -> str:
    role = outputs.get("PublisherRoleArn")
    if not role:
        raise StackError("the stack has no PublisherRoleArn output (is it this project's stack?)")
    from botocore.exceptions import ClientError

    try:
        credentials = sts.assume_role(RoleArn=role, RoleSessionName="publish")["Credentials"]
    except ClientError as error:
        raise StackError(
            f"could not assume {role}: {error}. Your principal needs sts:AssumeRole on it, and "
            "the role must trust you (PublisherPrincipalArn; docs/deploy.md, 'Permissions')"
        ) from None
    # `env $P` splits the words on white space and does not remove quotes: AWS keys and
    # tokens are base64-like, so the words are written as they are
    return " ".join(
        f"{var}={credentials[key]}"
        for var, key in (
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
        )
    )


def run(command: str, env: str, config_path: Path, session: Any) -> str:
    with config_path.open("rb") as f:
        name = stack_name(tomllib.load(f), env)
    outputs = stack_outputs(session.client("cloudformation"), name)
    if command == "outputs":
        key = api_key_value(session.client("apigateway"), outputs)
        return "\n".join(exports(name, outputs, key))
    return publisher_credentials(session.client("sts"), outputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["outputs", "publisher-credentials"])
    parser.add_argument("--env", required=True, help="a samconfig.toml environment: dev, prod")
    parser.add_argument("--config", type=Path, default=ROOT / "samconfig.toml")
    args = parser.parse_args(argv)

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        print(run(args.command, args.env, args.config, boto3.session.Session()))
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except NoRegionError:
        print("error: no AWS region: export AWS_DEFAULT_REGION=eu-west-1 (say)", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print(
            "error: no AWS credentials in this shell (aws configure, AWS SSO, or the "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables)",
            file=sys.stderr,
        )
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
