"""local.template: template.yaml read as `sam local` reads it, and the function's environment.

The strongest check is the differential one: for this project's template and events/env.json,
the environment equals what the SAM CLI's own code (installed in .venv) computes.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from local import template as tpl

ROOT = Path(__file__).resolve().parents[3]


def write_template(tmp_path: Path, text: str) -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return path


SMALL = """\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Stage: {Type: String, Default: dev}
      Bucket: {Type: String, Default: ""}
      Memory: {Type: Number, Default: 512}
      Flag: {Type: String, Default: "true"}
      Names: {Type: CommaDelimitedList, Default: "a,b"}
      NoDefault: {Type: String}
    Mappings:
      Settings:
        Metrics: {Namespace: Space}
    Conditions:
      MakeBucket: !Equals [!Ref Bucket, ""]
      NotMakeBucket: !Not [!Condition MakeBucket]
    Globals:
      Function:
        Runtime: python3.13
        MemorySize: !Ref Memory
        Layers: [GlobalLayer]
        Environment:
          Variables:
            FROM_GLOBALS: global
            OVERRIDDEN: global
            BUCKET: !If [MakeBucket, !Ref TheBucket, !Ref Bucket]
    Resources:
      TheBucket:
        Type: AWS::S3::Bucket
        Condition: MakeBucket
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn
          Handler: app.handler
          Layers: [LocalLayer]
          Environment:
            Variables:
              OVERRIDDEN: local
              STAGE_REGION: !Sub "${Stage}-${AWS::Region}-${AWS::AccountId}"
              ARN: !GetAtt TheBucket.Arn
              GONE: !If [NotMakeBucket, kept, !Ref AWS::NoValue]
              NAMESPACE: !FindInMap [Settings, Metrics, Namespace]
              JOINED: !Join ["+", !Ref Names]
              SECOND: !Select [1, !Ref Names]
              TRUE_FLAG: true
              NUMBER: 42
              UNSET: !Ref NoDefault
"""


@pytest.fixture
def small(tmp_path):
    return write_template(tmp_path, SMALL)


def test_globals_merge_as_sam_does():
    merged = tpl.merge_globals(
        {
            "Environment": {"Variables": {"A": "g", "B": "g"}},
            "Layers": ["g"],
            "Timeout": 3,
            "CodeUri": {"Ref": "X"},
        },
        {
            "Environment": {"Variables": {"B": "l"}},
            "Layers": ["l"],
            "Timeout": 9,
            "CodeUri": {"Bucket": "b"},
        },
    )
    assert merged == {
        "Environment": {"Variables": {"A": "g", "B": "l"}},  # maps merged
        "Layers": ["g", "l"],  # lists concatenated, globals first
        "Timeout": 9,  # scalars replaced
        "CodeUri": {"Bucket": "b"},
    }  # an intrinsic is a scalar


def test_function_spec_with_globals_parameters_and_intrinsics(small, tmp_path):
    spec = tpl.Template(small, region="eu-west-1").function("Fn")
    assert spec.code_uri == (tmp_path / "fn").resolve()
    assert (spec.handler, spec.runtime, spec.memory_size, spec.timeout) == (
        "app.handler",
        "python3.13",
        512,
        tpl.DEFAULT_TIMEOUT_S,
    )
    assert spec.variables["FROM_GLOBALS"] == "global"
    assert spec.variables["OVERRIDDEN"] == "local"
    assert spec.variables["BUCKET"] == "TheBucket"  # Ref to a resource: its logical id
    assert spec.variables["STAGE_REGION"] == "dev-eu-west-1-123456789012"
    assert spec.variables["ARN"] == {"Fn::GetAtt": ["TheBucket", "Arn"]}  # unresolvable
    assert "GONE" not in spec.variables  # AWS::NoValue removes the key
    assert spec.variables["NAMESPACE"] == "Space"
    assert spec.variables["JOINED"] == "a+b"
    assert spec.variables["SECOND"] == "b"
    assert spec.variables["UNSET"] == {"Ref": "NoDefault"}


def test_parameter_overrides_change_conditions(small):
    spec = tpl.Template(small, {"Bucket": "mine", "Stage": "prod"}).function()
    assert spec.variables["BUCKET"] == "mine"
    assert spec.variables["GONE"] == "kept"
    assert spec.variables["STAGE_REGION"].startswith("prod-")
    with pytest.raises(tpl.TemplateError, match="unknown parameter.*Nope.*declares: Bucket"):
        tpl.Template(small, {"Nope": "x"})


def test_parameter_override_syntax():
    assert tpl.parse_parameter_overrides(["A=1", "ParameterKey=B,ParameterValue=x=y", "C="]) == {
        "A": "1",
        "B": "x=y",
        "C": "",
    }
    with pytest.raises(tpl.TemplateError, match="Key=Value"):
        tpl.parse_parameter_overrides(["novalue"])


def test_environment_resolution_priority(small, tmp_path):
    """template value < shell value < env.json "Parameters" < env.json under the logical id;
    only declared variables are set; values are strings as Lambda wants them."""
    spec = tpl.Template(small).function()
    env_file = tmp_path / "env.json"
    env_file.write_text(
        json.dumps(
            {
                "Parameters": {"OVERRIDDEN": "all", "FROM_GLOBALS": "all", "UNDECLARED": "x"},
                "Fn": {"OVERRIDDEN": "mine", "NUMBER": 7},
                "OtherFunction": {"FROM_GLOBALS": "not for Fn"},
            }
        )
    )
    env_vars = tpl.load_env_vars(env_file)
    shell = {
        "FROM_GLOBALS": "shell",
        "STAGE_REGION": "shell",
        "NOT_DECLARED": "shell",
        "PATH": "/bin",
    }
    env = tpl.resolve_environment(spec, env_vars, shell)
    assert env["OVERRIDDEN"] == "mine"
    assert env["FROM_GLOBALS"] == "all"
    assert env["STAGE_REGION"] == "shell"
    assert env["NUMBER"] == "7"
    assert env["TRUE_FLAG"] == "true"
    assert env["ARN"] == "" and env["UNSET"] == ""  # unresolved intrinsics become ""
    assert "UNDECLARED" not in env and "NOT_DECLARED" not in env and "PATH" not in env
    assert tpl.ignored_overrides(spec, env_vars) == ["UNDECLARED"]


def test_lambda_variables_and_credentials(small):
    spec = tpl.Template(small).function()
    env = tpl.resolve_environment(spec, {}, {})
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "Fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "3"
    assert env["AWS_LAMBDA_FUNCTION_HANDLER"] == "app.handler"
    assert env["AWS_SAM_LOCAL"] == "true"  # Powertools Tracer stays off locally
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        "defaultkey",
        "defaultsecret",
    )
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    shell = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_SESSION_TOKEN": "t",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1",
    }
    env = tpl.resolve_environment(spec, {}, shell)
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]) == (
        "k",
        "s",
        "t",
    )
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:1"


@pytest.mark.parametrize("content", ['["not", "an object"]', '{"Fn": "not an object"}', "{"])
def test_env_vars_file_must_be_sams_format(tmp_path, content):
    path = tmp_path / "env.json"
    path.write_text(content)
    with pytest.raises(tpl.TemplateError, match="env.json"):
        tpl.load_env_vars(path)
    assert tpl.load_env_vars(tmp_path / "missing.json") == {}


def test_template_errors_name_the_problem(tmp_path):
    with pytest.raises(tpl.TemplateError, match="cannot read"):
        tpl.Template(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("Parameters: {}\n")
    with pytest.raises(tpl.TemplateError, match="Resources"):
        tpl.Template(bad)
    two = write_template(
        tmp_path,
        """\
        Resources:
          A: {Type: AWS::Serverless::Function, Properties: {CodeUri: fn, Handler: a.b}}
          B: {Type: AWS::Serverless::Function, Properties: {CodeUri: fn, Handler: a.b}}
    """,
    )
    with pytest.raises(tpl.TemplateError, match="2 functions"):
        tpl.Template(two).function()
    with pytest.raises(tpl.TemplateError, match="no function 'C'.*A, B"):
        tpl.Template(two).function("C")


# -- this project's template ---------------------------------------------------------------
@pytest.fixture(scope="module")
def project():
    return tpl.Template(ROOT / "template.yaml", region="us-east-1")


def test_project_function(project):
    spec = project.function()
    assert spec.logical_id == "InferenceFunction"
    assert spec.code_uri == ROOT / "functions" / "inference"
    assert spec.handler == "app.lambda_handler" and spec.runtime == "python3.13"
    assert spec.architectures == ("arm64",)
    parameters = tpl.load_template(ROOT / "template.yaml")["Parameters"]
    assert spec.memory_size == parameters["MemorySize"]["Default"]
    assert spec.timeout == parameters["FunctionTimeout"]["Default"]
    # the contract's variables, all resolved (the bucket created by the stack: its logical id)
    assert spec.variables["MODEL_BUCKET"] == "ModelBucket"
    for name in (
        "MODEL_PREFIX",
        "MODEL_NAME",
        "MODEL_VERSION",
        "MODEL_REFRESH_SECONDS",
        "MAX_INSTANCES",
        "MAX_BODY_BYTES",
        "MODEL_CACHE_DIR",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    ):
        assert isinstance(spec.variables[name], str | int), name


def test_project_routes(project):
    routes = {(r.method, r.path): r for r in project.routes()}
    assert set(routes) >= {
        ("POST", "/predict"),
        ("GET", "/health"),
        ("ANY", "/v1/models/{proxy+}"),
        ("ANY", "/{proxy+}"),
    }
    open_routes = {("GET", "/health"), ("GET", "/openapi.json")}
    assert not any(routes[key].api_key_required for key in open_routes)
    assert all(r.api_key_required for key, r in routes.items() if key not in open_routes)
    assert routes[("POST", "/predict")].request_model == "PredictRequest"
    api = project.apis()[routes[("POST", "/predict")].api_id]
    assert api.stage_name == "prod"
    assert "PredictRequest" in api.models
    assert {"INVALID_API_KEY", "DEFAULT_5XX"} <= set(api.gateway_responses)


def test_project_routes_in_iam_mode():
    iam = tpl.Template(ROOT / "template.yaml", {"ApiAuthMode": "IAM"})
    routes = {(r.method, r.path): r for r in iam.routes()}
    assert routes[("GET", "/health")].authorizer is None
    assert routes[("POST", "/predict")].authorizer == "AWS_IAM"
    assert not any(r.api_key_required for r in routes.values())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # samtranslator's own
def test_environment_equals_the_sam_clis(project, monkeypatch):
    """Differential: samcli's LocalLambdaRunner._make_env_vars on the same template,
    env.json and shell gives exactly what local.template gives."""
    pytest.importorskip("samcli")
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    for name in list(os.environ):
        if name.startswith(("AWS_", "MODEL_", "MAX_", "POWERTOOLS_")):
            monkeypatch.delenv(name)
    shell = {
        "AWS_ACCESS_KEY_ID": "shellkey",
        "AWS_SECRET_ACCESS_KEY": "shellsecret",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "MODEL_NAME": "from-shell",
        "MAX_INSTANCES": "9",
        # keep boto3 (inside samcli) away from the developer's own files
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    for name, value in shell.items():
        monkeypatch.setenv(name, value)
    env_vars = {
        "Parameters": {"MODEL_VERSION": "7"},
        "InferenceFunction": {"MODEL_BUCKET": "from-file", "MAX_INSTANCES": "5"},
    }

    monkeypatch.chdir(ROOT)
    stacks, _ = SamLocalStackProvider.get_stacks("template.yaml")
    function = SamFunctionProvider(stacks).get("InferenceFunction")
    runner = LocalLambdaRunner.__new__(LocalLambdaRunner)  # only what _make_env_vars reads
    runner.env_vars_values = env_vars
    runner.aws_profile = runner.aws_region = runner.debug_context = None
    runner._boto3_session_creds = runner._boto3_region = None
    expected = runner._make_env_vars(function).resolve()

    spec = tpl.Template(ROOT / "template.yaml", region="eu-central-1").function()
    ours = tpl.resolve_environment(spec, env_vars, dict(os.environ))
    assert ours == expected
    assert ours["MODEL_BUCKET"] == "from-file" and ours["MODEL_NAME"] == "from-shell"
    assert ours["MAX_INSTANCES"] == "5" and ours["MODEL_VERSION"] == "7"
