"""Read template.yaml the way the SAM CLI reads it for ``sam local``.

What it gives: each ``AWS::Serverless::Function`` with ``Globals.Function`` merged in
(SAM's rules: maps merged key by key, lists concatenated, scalars and intrinsics replaced),
intrinsics resolved against the parameters' defaults (or ``--parameter-overrides``) and
the pseudo-parameters SAM uses locally; each ``Api`` event as a route with its API's stage,
binary media types, stage variables and API-key requirement; and the function's
environment resolved exactly as ``sam local invoke --env-vars`` resolves it.

Mirrors, read from the SAM CLI's own code (aws-sam-cli 1.170):
- ``samcli/lib/intrinsic_resolver/intrinsics_symbol_table.py``: pseudo-parameter defaults,
  ``Ref`` to a resource gives its logical id, unresolvable intrinsics are left as they are;
- ``samtranslator/plugins/globals/globals.py``: how Globals merge into a resource;
- ``samcli/commands/local/lib/local_lambda.py`` (``_make_env_vars``) and
  ``samcli/local/lambdafn/env_vars.py`` (``EnvironmentVariables.resolve``): only variables
  the template declares are set; each takes, from lowest to highest priority, the
  template's value, the shell's value, the env-vars file's ``"Parameters"`` value, then the
  file's value under the function's logical id; dicts/lists (unresolved intrinsics) and None
  become "", booleans "true"/"false".
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_ENV_VARS = ROOT / "events" / "env.json"

FUNCTION_TYPE = "AWS::Serverless::Function"
API_TYPE = "AWS::Serverless::Api"
IMPLICIT_API = "ServerlessRestApi"  # the API SAM creates for Api events without RestApiId
IMPLICIT_STAGE = "Prod"

# samcli/lib/intrinsic_resolver/intrinsics_symbol_table.py: DEFAULT_PSEUDO_PARAM_VALUES
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
# Lambda's defaults (AWS::Serverless::Function / AWS::Lambda::Function documentation)
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3
# samcli/local/lambdafn/env_vars.py: placeholders when the shell has no credentials
DEFAULT_ACCESS_KEY = "defaultkey"
DEFAULT_SECRET_KEY = "defaultsecret"
# Variables of the local S3 endpoint, passed from the shell to the function (see
# aws_variables): in Docker, sam would need them in the env-vars file instead.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")

INTRINSICS = {
    "Ref",
    "Condition",
    "Fn::Sub",
    "Fn::Join",
    "Fn::If",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
    "Fn::Select",
    "Fn::Split",
    "Fn::GetAtt",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::ImportValue",
    "Fn::GetAZs",
    "Fn::Cidr",
    "Fn::Length",
    "Fn::ToJsonString",
    "Fn::Transform",
}


class TemplateError(Exception):
    """The template or an env-vars file is not what `sam local` would accept."""


class _NoValue:
    """AWS::NoValue: the property is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def _plain(node: Any) -> Any:
    """cfn-flip's ordered mappings and YAML scalars -> plain JSON-like Python values."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    if node is None or isinstance(node, bool | int | float | str):
        return node
    return str(node)  # dates and other YAML scalars, as CloudFormation sees them: text


def is_intrinsic(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in INTRINSICS


def load_template(path: Path | str = DEFAULT_TEMPLATE) -> dict:
    """template.yaml (or .json) with the short tags (!Ref, !Sub, ...) in their long form."""
    from cfn_flip import load_yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read the template ({exc.strerror})") from exc
    try:
        data = _plain(load_yaml(text))  # JSON is YAML too
    except Exception as exc:  # yaml.YAMLError and friends
        raise TemplateError(f"{path}: not a readable CloudFormation template ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path}: a template needs a 'Resources' mapping")
    return data


def parse_parameter_overrides(items: list[str] | None) -> dict[str, str]:
    """``Key=Value`` or SAM's ``ParameterKey=Key,ParameterValue=Value`` items."""
    result: dict[str, str] = {}
    for item in items or []:
        match = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", item)
        key, sep, value = (match.group(1), "=", match.group(2)) if match else item.partition("=")
        if not sep or not key:
            raise TemplateError(
                f"parameter override {item!r}: expected Key=Value or "
                "ParameterKey=Key,ParameterValue=Value"
            )
        result[key] = value
    return result


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals merge: maps merged key by key, lists concatenated, anything else replaced.

    An intrinsic function counts as a scalar (samtranslator's ``_token_of``).
    """
    if (
        isinstance(global_value, dict)
        and isinstance(local_value, dict)
        and not is_intrinsic(global_value)
        and not is_intrinsic(local_value)
    ):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


class Resolver:
    """Resolves CloudFormation intrinsics the way SAM CLI does locally.

    Anything it cannot resolve (a resource attribute, an import, a parameter without a
    value) is returned unchanged, as SAM's resolver does with ``ignore_errors=True``.
    """

    def __init__(
        self,
        template: dict,
        parameter_overrides: Mapping[str, str] | None = None,
        region: str = DEFAULT_REGION,
    ):
        self.template = template
        self.resources = template.get("Resources") or {}
        self.conditions = template.get("Conditions") or {}
        self.mappings = template.get("Mappings") or {}
        overrides = dict(parameter_overrides or {})
        declared = template.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(
                f"unknown parameter(s) {', '.join(unknown)}; the template declares: "
                f"{', '.join(sorted(declared)) or 'none'}"
            )
        self.parameters: dict[str, Any] = {}
        for name, spec in declared.items():
            spec = spec or {}
            value = overrides.get(name, spec.get("Default"))
            if value is None:
                continue  # no value: Ref stays unresolved, as in SAM
            kind = str(spec.get("Type", "String"))
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                if not isinstance(value, list):
                    value = [v.strip() for v in str(value).split(",")]
            else:
                value = _scalar_text(value)
            self.parameters[name] = value
        self.pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::StackName": "local",
            "AWS::StackId": (
                f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/local/"
                "51af3dc0-da77-11e4-872e-1234567db123"
            ),
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        self._condition_cache: dict[str, bool | None] = {}

    # -- values --------------------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if is_intrinsic(node):
            return self._intrinsic(node)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _intrinsic(self, node: dict) -> Any:
        ((name, arg),) = node.items()
        try:
            handler = getattr(self, "_fn_" + name.removeprefix("Fn::").lower())
        except AttributeError:
            return node  # Fn::ImportValue, Fn::GetAZs, ...: only CloudFormation knows
        result = handler(arg)
        return node if result is _UNRESOLVED else result

    def _all_resolved(self, *values: Any) -> bool:
        return not any(_contains_intrinsic(v) for v in values)

    def _fn_ref(self, arg: Any) -> Any:
        if not isinstance(arg, str):
            return _UNRESOLVED
        if arg == "AWS::NoValue":
            return NO_VALUE
        if arg in self.pseudo:
            return self.pseudo[arg]
        if arg in self.parameters:
            return self.parameters[arg]
        if arg in self.resources:
            return arg  # SAM: Ref to a resource resolves to its logical id
        return _UNRESOLVED

    def _fn_getatt(self, arg: Any) -> Any:
        return _UNRESOLVED  # runtime attributes (Arn, Url, ...) exist only once deployed

    def _fn_sub(self, arg: Any) -> Any:
        if isinstance(arg, list) and len(arg) == 2:
            text, variables = arg
            variables = {k: self.resolve(v) for k, v in (variables or {}).items()}
        else:
            text, variables = arg, {}
        text = self.resolve(text)
        if not isinstance(text, str):
            return _UNRESOLVED
        missing = []

        def substitute(match: re.Match) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"  # ${!Literal} -> ${Literal}
            if inner in variables:
                value = variables[inner]
            elif "." in inner:
                resource, attribute = inner.split(".", 1)
                value = self._intrinsic({"Fn::GetAtt": [resource, attribute]})
            else:
                value = self._intrinsic({"Ref": inner})
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return str(value)
            missing.append(inner)
            return match.group(0)

        result = re.sub(r"\$\{([^}]+)\}", substitute, text)
        return _UNRESOLVED if missing else result

    def _fn_join(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            return _UNRESOLVED
        delimiter, values = self.resolve(arg[0]), self.resolve(arg[1])
        if not isinstance(values, list) or not self._all_resolved(delimiter, values):
            return _UNRESOLVED
        return str(delimiter).join(_scalar_text(v) for v in values)

    def _fn_select(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            return _UNRESOLVED
        index, values = self.resolve(arg[0]), self.resolve(arg[1])
        try:
            return values[int(index)] if isinstance(values, list) else _UNRESOLVED
        except (ValueError, IndexError):
            return _UNRESOLVED

    def _fn_split(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            return _UNRESOLVED
        delimiter, text = self.resolve(arg[0]), self.resolve(arg[1])
        if not isinstance(delimiter, str) or not isinstance(text, str):
            return _UNRESOLVED
        return text.split(delimiter)

    def _fn_findinmap(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            return _UNRESOLVED
        keys = [self.resolve(a) for a in arg]
        try:
            return self.mappings[keys[0]][keys[1]][keys[2]]
        except (KeyError, TypeError):
            return _UNRESOLVED

    def _fn_base64(self, arg: Any) -> Any:
        text = self.resolve(arg)
        if not isinstance(text, str):
            return _UNRESOLVED
        return base64.b64encode(text.encode()).decode()

    def _fn_if(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            return _UNRESOLVED
        truth = self.condition(arg[0])
        if truth is None:
            return _UNRESOLVED
        return self.resolve(arg[1] if truth else arg[2])

    # -- conditions ----------------------------------------------------------------------
    def condition(self, name: str) -> bool | None:
        """The value of a named condition, or None if it cannot be known locally."""
        if name not in self._condition_cache:
            self._condition_cache[name] = None  # guards against cycles
            if name in self.conditions:
                self._condition_cache[name] = self._truth(self.conditions[name])
        return self._condition_cache[name]

    def _truth(self, node: Any) -> bool | None:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            return None
        ((name, arg),) = node.items()
        if name == "Condition":
            return self.condition(arg)
        if name == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = self.resolve(arg[0]), self.resolve(arg[1])
            if not self._all_resolved(left, right):
                return None
            return _scalar_text(left) == _scalar_text(right)
        if name == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            inner = self._truth(arg[0])
            return None if inner is None else not inner
        if name in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            values = [self._truth(a) for a in arg]
            if None in values:
                return None
            return all(values) if name == "Fn::And" else any(values)
        return None


_UNRESOLVED = object()


def _contains_intrinsic(value: Any) -> bool:
    if isinstance(value, dict):
        return is_intrinsic(value) or any(_contains_intrinsic(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_intrinsic(v) for v in value)
    return False


def _scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def stringify(value: Any) -> str:
    """samcli/local/lambdafn/env_vars.py ``_stringify_value``."""
    if isinstance(value, dict | list | tuple) or value is None or value is NO_VALUE:
        return ""
    return _scalar_text(value)


# -- the model of what sam local serves ---------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    runtime: str
    memory_size: int
    timeout: int
    architectures: tuple[str, ...]
    variables: dict[str, Any]  # Environment.Variables after Globals and intrinsics
    function_name: str | None = None  # the FunctionName property, if any
    logging_config: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """What `sam local` calls the function (AWS_LAMBDA_FUNCTION_NAME): its logical id."""
        return self.logical_id


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    stage_name: str
    binary_media_types: tuple[str, ...] = ()
    stage_variables: dict[str, str] = field(default_factory=dict)
    api_key_required: bool = False
    default_authorizer: str | None = None  # only AWS_IAM is understood locally
    models: dict[str, dict] = field(default_factory=dict)  # JSON schemas (Models)
    gateway_responses: dict[str, dict] = field(default_factory=dict)  # GatewayResponses


@dataclass(frozen=True)
class RouteSpec:
    method: str  # GET, POST, ... or ANY
    path: str  # API Gateway resource path: /predict, /v1/models/{proxy+}
    function_id: str
    api_id: str
    event_id: str
    api_key_required: bool
    authorizer: str | None = None  # "AWS_IAM" or None (open)
    request_model: str | None = None  # RequestModel.Model, when ValidateBody is true


class Template:
    """template.yaml as `sam local` sees it."""

    def __init__(
        self,
        path: Path | str = DEFAULT_TEMPLATE,
        parameter_overrides: Mapping[str, str] | None = None,
        region: str | None = None,
    ):
        self.path = Path(path).resolve()
        self.root = self.path.parent
        self.data = load_template(self.path)
        self.region = region or aws_region(os.environ)
        self.resolver = Resolver(self.data, parameter_overrides, self.region)
        self.globals = self.data.get("Globals") or {}

    def _resources(self, kind: str) -> dict[str, dict]:
        result = {}
        for logical_id, resource in self.data["Resources"].items():
            if not isinstance(resource, dict) or resource.get("Type") != kind:
                continue
            condition = resource.get("Condition")
            if condition and self.resolver.condition(condition) is False:
                continue  # not created in this configuration
            result[logical_id] = resource
        return result

    def _properties(self, resource: dict, globals_key: str) -> dict:
        properties = merge_globals(
            self.globals.get(globals_key) or {}, resource.get("Properties") or {}
        )
        return self.resolver.resolve(properties)

    # -- functions -----------------------------------------------------------------------
    def functions(self) -> dict[str, FunctionSpec]:
        result = {}
        for logical_id, resource in self._resources(FUNCTION_TYPE).items():
            props = self._properties(resource, "Function")
            code_uri = props.get("CodeUri")
            if not isinstance(code_uri, str):
                raise TemplateError(
                    f"{logical_id}: CodeUri must be a local folder for sam local, got {code_uri!r}"
                )
            environment = props.get("Environment") or {}
            variables = environment.get("Variables") if isinstance(environment, dict) else None
            result[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=(self.root / code_uri).resolve(),
                handler=str(props.get("Handler", "")),
                runtime=str(props.get("Runtime", "")),
                memory_size=int(props.get("MemorySize", DEFAULT_MEMORY_MB)),
                timeout=int(props.get("Timeout", DEFAULT_TIMEOUT_S)),
                architectures=tuple(props.get("Architectures") or ["x86_64"]),
                variables=dict(variables) if isinstance(variables, dict) else {},
                function_name=(
                    props["FunctionName"] if isinstance(props.get("FunctionName"), str) else None
                ),
                logging_config=(
                    props.get("LoggingConfig")
                    if isinstance(props.get("LoggingConfig"), dict)
                    else {}
                ),
            )
        return result

    def function(self, logical_id: str | None = None) -> FunctionSpec:
        functions = self.functions()
        if logical_id is None:
            if len(functions) != 1:
                raise TemplateError(
                    f"{self.path.name} has {len(functions)} functions "
                    f"({', '.join(functions) or 'none'}); name one"
                )
            return next(iter(functions.values()))
        if logical_id not in functions:
            raise TemplateError(
                f"no function {logical_id!r} in {self.path.name}; it has: "
                f"{', '.join(functions) or 'none'}"
            )
        return functions[logical_id]

    # -- APIs and routes -----------------------------------------------------------------
    def _api_spec(self, logical_id: str, props: dict, default_stage: str) -> ApiSpec:
        auth = props.get("Auth") if isinstance(props.get("Auth"), dict) else {}
        stage = props.get("StageName", default_stage)
        authorizer = auth.get("DefaultAuthorizer")
        return ApiSpec(
            logical_id=logical_id,
            stage_name=stage if isinstance(stage, str) else default_stage,
            # SAM writes "/" as "~1" in BinaryMediaTypes (JSON pointer escaping)
            binary_media_types=tuple(
                str(t).replace("~1", "/")
                for t in props.get("BinaryMediaTypes") or []
                if isinstance(t, str)
            ),
            stage_variables={k: stringify(v) for k, v in (props.get("Variables") or {}).items()},
            api_key_required=bool(auth.get("ApiKeyRequired", False)),
            default_authorizer=authorizer if isinstance(authorizer, str) else None,
            models={k: v for k, v in (props.get("Models") or {}).items() if isinstance(v, dict)},
            gateway_responses={
                k: v
                for k, v in (props.get("GatewayResponses") or {}).items()
                if isinstance(v, dict)
            },
        )

    def apis(self) -> dict[str, ApiSpec]:
        result = {
            logical_id: self._api_spec(logical_id, self._properties(resource, "Api"), "")
            for logical_id, resource in self._resources(API_TYPE).items()
        }
        implicit = self.resolver.resolve(self.globals.get("Api") or {})
        result[IMPLICIT_API] = self._api_spec(IMPLICIT_API, implicit, IMPLICIT_STAGE)
        return result

    def routes(self) -> list[RouteSpec]:
        apis = self.apis()
        routes = []
        for logical_id, resource in self._resources(FUNCTION_TYPE).items():
            events = self.resolver.resolve((resource.get("Properties") or {}).get("Events") or {})
            for event_id, event in events.items():
                if not isinstance(event, dict) or event.get("Type") != "Api":
                    continue
                props = event.get("Properties") or {}
                api_id = props.get("RestApiId", IMPLICIT_API)
                if not isinstance(api_id, str) or api_id not in apis:
                    raise TemplateError(
                        f"{logical_id}.Events.{event_id}: RestApiId {api_id!r} is not an "
                        f"AWS::Serverless::Api of this template"
                    )
                auth = props.get("Auth") if isinstance(props.get("Auth"), dict) else {}
                key_required = auth.get("ApiKeyRequired", apis[api_id].api_key_required)
                authorizer = auth.get("Authorizer", apis[api_id].default_authorizer)
                model = (
                    props.get("RequestModel") if isinstance(props.get("RequestModel"), dict) else {}
                )
                method = str(props.get("Method", "")).upper()
                routes.append(
                    RouteSpec(
                        method="ANY"
                        if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD")
                        else method,
                        path="/" + str(props.get("Path", "")).strip("/"),
                        function_id=logical_id,
                        api_id=api_id,
                        event_id=event_id,
                        api_key_required=bool(key_required),
                        authorizer=authorizer if authorizer not in (None, "NONE") else None,
                        request_model=(
                            str(model["Model"])
                            if model.get("Model") and model.get("ValidateBody")
                            else None
                        ),
                    )
                )
        return routes


# -- the function's environment ------------------------------------------------------------
def aws_region(shell_env: Mapping[str, str]) -> str:
    return shell_env.get("AWS_REGION") or shell_env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def load_env_vars(path: Path | str | None) -> dict[str, dict]:
    """An env-vars file as ``sam local --env-vars`` reads it; missing file -> {}.

    ``{"LogicalId": {"VAR": value}, "Parameters": {"VAR": value}}``; every value must be
    an object (samcli raises OverridesNotWellDefinedError otherwise).
    """
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TemplateError(f"{path}: not a readable JSON env-vars file ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TemplateError(
            f'{path}: expected {{"<LogicalId>": {{"VAR": "value"}}, '
            '"Parameters": {"VAR": "value"}}: every value must be an object'
        )
    return data


def env_overrides(function: FunctionSpec, env_vars: Mapping[str, dict]) -> dict[str, Any]:
    """ "Parameters" (all functions), then the function's own entry, which wins."""
    overrides = dict(env_vars.get("Parameters") or {})
    own = env_vars.get(function.logical_id) or (
        env_vars.get(function.function_name) if function.function_name else None
    )
    overrides.update(own or {})
    return overrides


def ignored_overrides(function: FunctionSpec, env_vars: Mapping[str, dict]) -> list[str]:
    """Names in the env-vars file that the template does not declare: sam ignores them."""
    return sorted(set(env_overrides(function, env_vars)) - set(function.variables))


def aws_variables(function: FunctionSpec, shell_env: Mapping[str, str]) -> dict[str, str]:
    """The AWS_* variables sam local sets (EnvironmentVariables._get_aws_variables).

    Credentials come from the shell's environment variables only (never from files);
    without them, SAM's placeholders. Local addition: the shell's AWS_ENDPOINT_URL(_S3),
    so the function reaches the loopback S3 server the same way every other part does.
    """
    region = aws_region(shell_env)
    result = {
        "AWS_SAM_LOCAL": "true",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
        "AWS_LAMBDA_FUNCTION_HANDLER": function.handler,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": shell_env.get("AWS_ACCESS_KEY_ID") or DEFAULT_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": shell_env.get("AWS_SECRET_ACCESS_KEY") or DEFAULT_SECRET_KEY,
        "AWS_ACCOUNT_ID": ACCOUNT_ID,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    }
    if shell_env.get("AWS_SESSION_TOKEN"):
        result["AWS_SESSION_TOKEN"] = shell_env["AWS_SESSION_TOKEN"]
    log_format = function.logging_config.get("LogFormat")
    if isinstance(log_format, str):
        result["AWS_LAMBDA_LOG_FORMAT"] = log_format
        if log_format == "JSON":
            result["AWS_LAMBDA_LOG_LEVEL"] = str(
                function.logging_config.get("ApplicationLogLevel", "INFO")
            )
    if isinstance(function.logging_config.get("LogGroup"), str):
        result["AWS_LAMBDA_LOG_GROUP_NAME"] = function.logging_config["LogGroup"]
    for name in ENDPOINT_VARIABLES:
        if shell_env.get(name):
            result[name] = shell_env[name]
    return result


def function_variables(
    function: FunctionSpec, env_vars: Mapping[str, dict], shell_env: Mapping[str, str]
) -> dict[str, str]:
    """The template's variables after the shell's and the env-vars file's values."""
    overrides = env_overrides(function, env_vars)
    result = {}
    for name, value in function.variables.items():
        if name in shell_env:
            value = shell_env[name]
        if name in overrides:
            value = overrides[name]
        result[name] = stringify(value)
    return result


def resolve_environment(
    function: FunctionSpec,
    env_vars: Mapping[str, dict] | None = None,
    shell_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Everything `sam local invoke` puts in the function's environment."""
    shell_env = os.environ if shell_env is None else shell_env
    result = aws_variables(function, shell_env)
    result.update(function_variables(function, env_vars or {}, shell_env))
    return result


def add_function_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the function and its environment, as the sam local commands
    name them (shared by local.invoke and local.api)."""
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument(
        "--function",
        default=None,
        help="logical id of the function (default: the template's only one)",
    )
    parser.add_argument(
        "--env-vars",
        type=Path,
        default=DEFAULT_ENV_VARS,
        help="sam's --env-vars file (default: events/env.json if present)",
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter values, as sam's --parameter-overrides",
    )
