"""local.template: template.yaml read by the pinned SAM CLI's own code, and the little kept
by hand (each Api event's settings, unknown parameters). The first test fails when an upgrade
of the SAM CLI changes the internal API that local/ builds on."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from local import template as tpl

ROOT = Path(__file__).resolve().parents[3]
SHELL = {"AWS_ACCESS_KEY_ID": "shellkey", "AWS_SECRET_ACCESS_KEY": "shellsecret"}


def test_the_pinned_sam_clis_internal_api_is_the_one_local_uses():
    from importlib.metadata import version

    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
    from samcli.local.apigw.local_apigw_service import LocalApigwService
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    pinned = re.search(r"^aws-sam-cli==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert version("aws-sam-cli") == pinned.group(1)
    parameters = {
        LocalLambdaRunner.__init__: ["local_runtime", "function_provider", "cwd", "real_path"]
        + ["aws_profile", "aws_region", "env_vars_values"],
        LocalLambdaRunner._make_env_vars: ["function"],
        LocalApigwService.__init__: ["api", "lambda_runner", "static_dir", "port", "host"],
        LocalApigwService._request_handler: [],
        LocalApigwService._generate_lambda_event: ["flask_request", "route", "method"],
        LocalApigwService._invoke_lambda_function: ["lambda_function_name", "event"],
        LocalApigwService._get_current_route: ["flask_request"],
        LocalApigwService._parse_v1_payload_format_lambda_output: ["lambda_output"]
        + ["binary_types", "flask_request", "event_type"],
    }
    for function, names in parameters.items():
        found = [p for p in inspect.signature(function).parameters if p not in ("self", "kwargs")]
        assert found[: len(names)] == names, function.__qualname__
    assert hasattr(LocalApigwService, "_construct_error_handling")
    variables = EnvironmentVariables(variables={"A": 1}, shell_env_values={}, aws_creds={})
    assert {"shell_env_values", "aws_creds"} <= set(vars(variables))


@pytest.fixture(scope="module")
def project():
    return tpl.Template(ROOT / "template.yaml", {"BucketName": "my-bucket"}, region="eu-west-1")


def test_the_function_and_its_environment(project):
    function = project.function("InferenceFunction")
    assert (function.name, function.handler, function.runtime) == (
        "InferenceFunction",
        "app.lambda_handler",
        "python3.13",
    )
    assert project.code_dir(function) == ROOT / "functions" / "inference"
    env = project.environment(function, shell_env=SHELL)
    parameters = project.data["Parameters"]
    assert env["MODEL_BUCKET"] == "my-bucket"
    assert env["MODEL_NAME"] == parameters["ModelName"]["Default"] == project.default("ModelName")
    assert env["MAX_INSTANCES"] == str(parameters["MaxInstances"]["Default"])
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(parameters["MemorySize"]["Default"])
    assert env["MODEL_CACHE_DIR"] == "/tmp/models" and env["AWS_SAM_LOCAL"] == "true"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_REGION"]) == ("shellkey", "eu-west-1")
    assert env["AWS_LAMBDA_LOG_FORMAT"] == "JSON"  # the template's LoggingConfig


def test_the_monitor_function_shares_the_environment(project):
    """Two functions: sam (and the local runners) need the one to run named."""
    with pytest.raises(tpl.TemplateError, match="InferenceFunction.*MonitorFunction|name one"):
        project.function()
    monitor = project.function("MonitorFunction")
    assert (monitor.handler, project.code_dir(monitor)) == (
        "monitor.lambda_handler",
        ROOT / "functions" / "monitor",
    )
    env = project.environment(monitor, shell_env=SHELL)
    inference = project.environment(project.function("InferenceFunction"), shell_env=SHELL)
    for name in ("MODEL_BUCKET", "MODEL_NAME", "MODEL_VERSION", "POWERTOOLS_SERVICE_NAME"):
        assert env[name] == inference[name], name  # the same model, the same metrics
    assert env["MONITOR_WINDOW_MINUTES"] == str(project.default("MonitorWindowMinutes"))


def test_without_bucket_name_the_bucket_is_the_templates_logical_id():
    """What sam does locally with !If [CreateModelBucket, !Ref ModelBucket, ...]: why the
    local runs always pass BucketName."""
    template = tpl.Template(ROOT / "template.yaml")
    function = template.function("InferenceFunction")
    assert template.environment(function, shell_env={})["MODEL_BUCKET"] == "ModelBucket"


def test_environment_priority_as_sam_local_invoke(project):
    """template value < shell < env-vars "Parameters" < env-vars entry of the function; only
    declared variables are set; the shell's S3 and CloudWatch endpoints reach the function."""
    function = project.function("InferenceFunction")
    env_vars = {
        "Parameters": {"MODEL_VERSION": "7", "MAX_INSTANCES": "1", "UNDECLARED": "x"},
        "InferenceFunction": {"MAX_INSTANCES": "5"},
    }
    shell = {**SHELL, "MODEL_NAME": "from-shell", "MODEL_VERSION": "9", "PATH": "/bin"}
    shell["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:1"
    shell["AWS_ENDPOINT_URL_CLOUDWATCH"] = "http://127.0.0.1:2"
    env = project.environment(function, env_vars, shell)
    assert (env["MODEL_NAME"], env["MODEL_VERSION"]) == ("from-shell", "7")
    assert env["MAX_INSTANCES"] == "5"
    assert "UNDECLARED" not in env and "PATH" not in env
    assert env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:1"
    assert env["AWS_ENDPOINT_URL_CLOUDWATCH"] == "http://127.0.0.1:2"


def test_parameter_overrides():
    parse = tpl.parse_parameter_overrides
    parsed = parse(["ModelName=digits", "ParameterKey=ModelPrefix,ParameterValue=a=b"])
    assert parsed == {"ModelName": "digits", "ModelPrefix": "a=b"}
    assert parse(["ModelName=a BucketName=b"]) == {"ModelName": "a", "BucketName": "b"}
    with pytest.raises(tpl.TemplateError, match="not a valid format"):
        tpl.parse_parameter_overrides(["novalue"])
    with pytest.raises(tpl.TemplateError, match="unknown parameter.*Nope.*declares: .*BucketName"):
        tpl.Template(ROOT / "template.yaml", {"Nope": "x"})
    with pytest.raises(tpl.TemplateError, match="not found"):
        tpl.Template(ROOT / "nope.yaml")


def test_env_vars_file_must_be_sams_format(tmp_path):
    for content in ('["not", "an object"]', '{"Fn": "not an object"}', "{"):
        (tmp_path / "env.json").write_text(content)
        with pytest.raises(tpl.TemplateError, match="env.json"):
            tpl.load_env_vars(tmp_path / "env.json")
    (tmp_path / "env.json").write_text(json.dumps({"Fn": {"A": "1"}}))
    assert tpl.load_env_vars(tmp_path / "env.json") == {"Fn": {"A": "1"}}
    assert tpl.load_env_vars(None) == {}


def test_each_api_events_own_settings(project):
    """sam's routes merge the events of a path; API Gateway applies each event's settings to
    its own (resource, method) pair."""
    methods = project.methods()
    assert methods[("/predict", "POST")].request_model == "PredictRequest"
    assert methods[("/predict", "POST")].api_key_required
    assert methods[("/predict", "ANY")].request_model is None
    assert not methods[("/health", "GET")].api_key_required
    assert not methods[("/openapi.json", "GET")].api_key_required
    assert methods[("/health", "ANY")].api_key_required
    assert not methods[("/", "GET")].api_key_required  # the page; the key is typed into it
    assert methods[("/", "ANY")].api_key_required
    assert {("/v1/models/{proxy+}", "ANY"), ("/{proxy+}", "ANY"), ("/", "ANY")} <= set(methods)
    assert not any(m.iam for m in methods.values())
    api = project.api_properties(methods[("/predict", "POST")].api_id)
    assert "PredictRequest" in api["Models"] and "INVALID_API_KEY" in api["GatewayResponses"]
    iam = tpl.Template(ROOT / "template.yaml", {"ApiAuthMode": "IAM"}).methods()
    assert iam[("/predict", "POST")].iam and not iam[("/health", "GET")].iam
    assert not any(m.api_key_required for m in iam.values())


def test_function_lookup_errors(project):
    with pytest.raises(tpl.TemplateError, match="no function 'Nope'.*InferenceFunction"):
        project.function("Nope")
