"""template.yaml read by the SAM CLI's own code (aws-sam-cli, pinned in requirements.txt).

- ``SamLocalStackProvider``: the template with ``Globals`` merged, intrinsics and conditions
  resolved against the parameters (defaults, ``--parameter-overrides``), as ``sam local`` does;
- ``SamFunctionProvider``: the functions; ``LocalLambdaRunner._make_env_vars`` +
  ``EnvironmentVariables.resolve``: a function's environment exactly as ``sam local invoke
  --env-vars`` builds it (template values < shell < env-vars file "Parameters" < the file's
  entry for the function; credentials from the shell or the AWS profile, else placeholders);
- ``ApiProvider``: the API's routes, stage and binary media types for ``local.api``, of the
  API the template selects (ApiType: the REST API's Api events, or the HTTP API's routes).

Kept here, because SAM CLI drops or ignores them: each route's own settings (API key, IAM
authorizer, JWT, request model) and its API's Models and GatewayResponses (``methods``); and
resource conditions: SAM CLI keeps a resource whose Condition is false (the HTTP API of a
REST deployment would take the REST API's routes), so those resources are dropped here.
``tests/unit/local/test_local_template.py`` fails if the pinned SAM CLI's API changes.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"
# Local addition: the shell's endpoints of the loopback S3 and CloudWatch reach the function,
# as they reach every other part (sam local in Docker would need them in the env-vars file).
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDWATCH")
# The local tools run SAM CLI's code offline: it must never send SAM CLI telemetry.
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")


_NO_VALUE = {"Ref": "AWS::NoValue"}


class TemplateError(Exception):
    """The template, a parameter override or an env-vars file is not what sam would accept."""


def parse_parameter_overrides(items: list[str] | None) -> dict[str, str]:
    """``Key=Value`` or ``ParameterKey=Key,ParameterValue=Value`` items, parsed by sam's own
    option type (``samcli.cli.types.CfnParameterOverridesType``)."""
    if not items:
        return {}
    import click
    from samcli.cli.types import CfnParameterOverridesType

    try:
        return dict(CfnParameterOverridesType().convert(tuple(items), None, None))
    except click.BadParameter as exc:
        raise TemplateError(f"parameter overrides: {exc.format_message()}") from None


def load_env_vars(path: Path | str | None) -> dict[str, dict]:
    """An env-vars file as ``sam local --env-vars`` reads it (no file: {})."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise TemplateError(f"{path}: not a readable JSON env-vars file ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TemplateError(
            f'{path}: expected {{"<LogicalId>": {{"VAR": "value"}}, "Parameters": {{...}}}}'
        )
    return data


def add_function_arguments(parser: argparse.ArgumentParser) -> None:
    """sam local's options for the template and the functions' environment."""
    parser.add_argument("--template", "-t", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--env-vars", "-n", type=Path, help="sam's --env-vars JSON file")
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter values, as sam's --parameter-overrides",
    )


@dataclass(frozen=True)
class Method:
    """One route: what API Gateway applies to its (resource, method) pair."""

    api_id: str
    api_key_required: bool
    iam: bool  # AWS_IAM authorizer: a SigV4 signature is required
    request_model: str | None  # RequestModel.Model when ValidateBody is true
    jwt: bool = False  # an HTTP API's JWT authorizer: a bearer token is required

    @property
    def authorization(self) -> str | None:
        """What the Authorization header must hold, or None."""
        return "SigV4" if self.iam else "a JWT" if self.jwt else None


REST, HTTP = "rest", "http"  # template parameter ApiType
# SAM CLI's route kinds (samcli.local.apigw.route.Route.API / .HTTP) for each
ROUTE_KINDS = {REST: "Api", HTTP: "HttpApi"}


class Template:
    """template.yaml as ``sam local`` sees it, for one set of parameter overrides."""

    def __init__(
        self,
        path: Path | str = DEFAULT_TEMPLATE,
        parameter_overrides: Mapping[str, str] | None = None,
        region: str | None = None,
    ):
        from samcli.lib.providers.sam_function_provider import SamFunctionProvider
        from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

        self.path = Path(path).resolve()
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        overrides = dict(parameter_overrides or {})
        try:
            self.stacks, _ = SamLocalStackProvider.get_stacks(
                str(self.path),
                parameter_overrides=overrides,
                global_parameter_overrides={"AWS::Region": self.region},
            )
        except Exception as exc:  # samcli's many template errors: one message
            raise TemplateError(f"{self.path}: {exc}") from None
        self.data = self.stacks[0].template_dict
        self.resources = self.stacks[0].resources
        self._overrides = {"AWS::Region": self.region, **overrides}
        declared = self.data.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:  # sam ignores them silently; a typo would go unnoticed
            raise TemplateError(
                f"unknown parameter(s) {', '.join(unknown)}; the template declares: "
                f"{', '.join(sorted(declared)) or 'none'}"
            )
        self.parameters = {k: str(v.get("Default", "")) for k, v in declared.items()}
        self.parameters.update(overrides)
        self._resolve_conditions()
        try:
            self.functions = SamFunctionProvider(self.stacks, ignore_code_extraction_warnings=True)
        except Exception as exc:
            raise TemplateError(f"{self.path}: {exc}") from None

    def _resolve_conditions(self) -> None:
        """What CloudFormation does and SAM CLI does not: a resource whose Condition is false
        is not there, and an Fn::If in a function's own properties (its Environment, Layers)
        takes its branch (SAM CLI resolves those of Globals only, and leaves these as ""). The
        conditions are parameter-only: evaluated as local.transformed does."""
        from local.transformed import resolve_language_extensions

        conditions = {"Conditions": self.data.get("Conditions") or {}, "Transform": []}
        for stack in self.stacks:
            template = {**conditions, "Resources": dict(stack.resources)}
            resolved = resolve_language_extensions(template, self.parameters)
            true = set(resolved["_conditions_true"])
            for name, resource in list(stack.resources.items()):
                if resource.get("Condition") and resource["Condition"] not in true:
                    del stack.resources[name]
                elif resource.get("Type") == "AWS::Serverless::Function":
                    # a branch's parameter Refs too, as SAM CLI resolves the others (an API's
                    # OpenAPI body stays as SAM CLI reads it: it cannot parse a JWT authorizer)
                    stack.resources[name] = self._with_parameters(resolved["Resources"][name])

    def _with_parameters(self, node):
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in self.parameters:
                return self.parameters[node["Ref"]]
            return {k: self._with_parameters(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._with_parameters(v) for v in node]
        return node

    @property
    def api_type(self) -> str:
        """The API the template puts in front of the function (ApiType: rest or http)."""
        return self.parameters.get("ApiType") or REST

    def default(self, parameter: str) -> str:
        """A parameter's default in the template (the one place defaults live)."""
        return str(self.data["Parameters"][parameter]["Default"])

    def function(self, name: str | None = None):
        """samcli's Function (logical id, function name or full path, as sam accepts)."""
        functions = list(self.functions.get_all())
        if name is None and len(functions) == 1:
            return functions[0]
        found = self.functions.get(name) if name else None
        if found is None:
            names = ", ".join(f.name for f in functions) or "none"
            raise TemplateError(
                f"no function {name!r} in {self.path.name}; it has: {names}"
                if name
                else f"{self.path.name} has {len(functions)} functions ({names}); name one"
            )
        return found

    def code_dir(self, function) -> Path:
        return (self.path.parent / (function.codeuri or ".")).resolve()

    def environment(
        self,
        function,
        env_vars: Mapping[str, dict] | None = None,
        shell_env: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The function's environment as ``sam local invoke`` resolves it, in this shell
        (default: os.environ; sam takes the credentials from it or the AWS profile)."""
        from samcli.commands.local.lib.local_lambda import LocalLambdaRunner

        runner = LocalLambdaRunner(
            None,  # the container runtime: _make_env_vars does not use it
            self.functions,
            str(self.path.parent),
            str(self.path.parent),
            aws_region=self.region,
            env_vars_values=dict(env_vars or {}),
        )
        variables = runner._make_env_vars(function)  # samcli's EnvironmentVariables
        if shell_env is not None:  # another shell than this process's (tests)
            variables.shell_env_values = shell_env
            names = {"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY"}
            variables.aws_creds = {"region": self.region}
            variables.aws_creds.update(
                {k: shell_env[v] for k, v in names.items() if v in shell_env}
            )
        shell = os.environ if shell_env is None else shell_env
        environment = variables.resolve()
        environment.update({k: shell[k] for k in ENDPOINT_VARIABLES if shell.get(k)})
        return environment

    def api(self):
        """samcli's Api: routes (merged per path and function), stage, binary media types, of
        the API the template selects (api_type)."""
        from samcli.lib.providers.api_provider import ApiProvider

        api = ApiProvider(self.stacks).api
        api.routes = [r for r in api.routes if r.event_type == ROUTE_KINDS[self.api_type]]
        return api

    def api_properties(self, api_id: str) -> dict:
        resource = self.resources.get(api_id) or {}
        return self.without_no_value(resource.get("Properties") or {})

    def without_no_value(self, value):
        """`value` with what sam's resolver leaves unresolved resolved as CloudFormation does:
        an Fn::If with an AWS::NoValue branch (sam's resolver has no value for it and keeps the
        Fn::If as it is), the key dropped where NoValue is chosen."""
        if isinstance(value, list):
            return [self.without_no_value(v) for v in value]
        if not isinstance(value, dict):
            return value
        resolved = {}
        for key, item in value.items():
            branches = item.get("Fn::If") if isinstance(item, dict) and len(item) == 1 else None
            if isinstance(branches, list) and len(branches) == 3 and _NO_VALUE in branches[1:]:
                item = branches[1] if self.condition(branches[0]) else branches[2]
                if item == _NO_VALUE:
                    continue
            resolved[key] = self.without_no_value(item)
        return resolved

    def condition(self, name: str) -> bool:
        """A condition of the template, evaluated by sam's own resolver."""
        from samcli.lib.intrinsic_resolver.intrinsic_property_resolver import IntrinsicResolver
        from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable
        from samcli.lib.providers.sam_base_provider import SamBaseProvider

        values = SamBaseProvider._get_parameter_values(self.data, self._overrides)
        symbols = IntrinsicsSymbolTable(logical_id_translator=values, template=self.data)
        resolver = IntrinsicResolver(template=self.data, symbol_resolver=symbols)
        return resolver.intrinsic_property_resolver({"Fn::If": [name, True, False]}, False) is True

    def methods(self) -> dict[tuple[str, str], Method]:
        """(path, METHOD or ANY) -> the settings of the route that declares it: the REST API's
        Api events, or the HTTP API's OpenAPI operations (api_type)."""
        if self.api_type == HTTP:
            return self._http_api_methods()
        result = {}
        for function in self.functions.get_all():
            for event in (function.events or {}).values():
                if not isinstance(event, dict) or event.get("Type") != "Api":
                    continue
                props = event.get("Properties") or {}
                api_id = props.get("RestApiId", "ServerlessRestApi")
                api_auth = self.api_properties(api_id).get("Auth") or {}
                auth = props.get("Auth") or {}
                authorizer = auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
                model = props.get("RequestModel") or {}
                method = str(props.get("Method", "")).upper()
                method = "ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method
                result[("/" + str(props.get("Path", "")).strip("/"), method)] = Method(
                    api_id,
                    bool(auth.get("ApiKeyRequired", api_auth.get("ApiKeyRequired", False))),
                    authorizer == "AWS_IAM",
                    model.get("Model") if model.get("ValidateBody") else None,
                )
        return result

    def _http_api_methods(self) -> dict[tuple[str, str], Method]:
        """Each operation of each HTTP API's OpenAPI body: its security (AWS_IAM: SigV4; an
        oauth2 scheme with a jwt authorizer: a JWT; `security: []`: open)."""
        result = {}
        from local.transformed import resolve_language_extensions

        apis = {
            k: r for k, r in self.resources.items() if r.get("Type") == "AWS::Serverless::HttpApi"
        }
        # the Fn::If that SAM CLI leaves in the body (securitySchemes), resolved as deployed
        template = {"Resources": apis, "Conditions": self.data.get("Conditions") or {}}
        apis = resolve_language_extensions({**template, "Transform": []}, self.parameters)
        for api_id, resource in apis["Resources"].items():
            body = (resource.get("Properties") or {}).get("DefinitionBody") or {}
            schemes = (body.get("components") or {}).get("securitySchemes") or {}
            for path, operations in (body.get("paths") or {}).items():
                for method, operation in (operations or {}).items():
                    method = method.upper()
                    method = "ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method
                    names = {n for entry in operation.get("security") or [] for n in entry}
                    kinds = {
                        (schemes.get(n) or {}).get("x-amazon-apigateway-authtype") for n in names
                    }
                    jwt = any(
                        ((schemes.get(n) or {}).get("x-amazon-apigateway-authorizer") or {}).get(
                            "type"
                        )
                        == "jwt"
                        for n in names
                    )
                    result[(path, method)] = Method(api_id, False, "awsSigv4" in kinds, None, jwt)
        return result
