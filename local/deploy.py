"""`make deploy ENV=...`: `sam deploy --config-env ENV` with the parameter overrides it needs.

`sam deploy --parameter-overrides` on the command line replaces the config environment's
`parameter_overrides` (samconfig.toml) rather than adding to them, so this prints both: the
environment's, then PARAMS, then ConfigurationDigest, a digest of all of them. The digest is
what makes a changed parameter publish a new version of the inference function: SAM hashes
parameter Refs unresolved (aws/serverless-application-model#3820) but resolves the one
parameter the template gives to AutoPublishCodeSha256.
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
    command = sam_deploy_command(config, args.env, args.params, args.sam)
    print(shlex.join(command), flush=True)
    if args.print:
        return 0
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
