"""template.yaml, checked for what a user of the deployed stack would notice.

Two views of the template:
- `template`: the file as written (short tags loaded by cfn-lint's loader);
- `deployed[mode]`: what CloudFormation creates for ApiAuthMode=API_KEY (the default) or IAM,
  through the AWS::LanguageExtensions step and the real SAM translator (tests/sam_support.py).
"""

from __future__ import annotations

import ast
import base64
import json
import re

import pytest

from tests.sam_support import (
    FUNCTION_DIR,
    LAYER_DIR,
    ROOT,
    TEMPLATE,
    deployed_resources,
    load_template,
    parameter_values,
    resolve_language_extensions,
    translate,
)

# The function's configuration contract (contract.md, functions/inference/config.py):
# template parameter -> environment variable, through Globals.Function.Environment.
PARAMETER_ENV = {
    "BucketName": "MODEL_BUCKET",
    "ModelPrefix": "MODEL_PREFIX",
    "ModelName": "MODEL_NAME",
    "ModelVersion": "MODEL_VERSION",
    "ModelRefreshSeconds": "MODEL_REFRESH_SECONDS",
    "MaxInstances": "MAX_INSTANCES",
    "MaxBodyBytes": "MAX_BODY_BYTES",
    "MaxImagePixels": "MAX_IMAGE_PIXELS",
    "MaxBatchPixels": "MAX_BATCH_PIXELS",
    "DeadlineSeconds": "DEADLINE_SECONDS",
    "LogLevel": "POWERTOOLS_LOG_LEVEL",
    "CaptureSampleRate": "CAPTURE_SAMPLE_RATE",
    "MonitorWindowMinutes": "MONITOR_WINDOW_MINUTES",
    "MonitorMinPredictions": "MONITOR_MIN_PREDICTIONS",
}
ERROR_CODES_FROM_CONTRACT = {
    "INVALID_JSON",
    "UNSUPPORTED_MEDIA_TYPE",
    "MISSING_FIELD",
    "AMBIGUOUS_INPUT",
    "INVALID_SHAPE",
    "INVALID_TYPE",
    "NON_FINITE_VALUE",
    "VALUE_OUT_OF_RANGE",
    "INVALID_IMAGE",
    "TOO_MANY_INSTANCES",
    "PAYLOAD_TOO_LARGE",
    "EMPTY_BATCH",
    "UNKNOWN_SIGNATURE",
    "MODEL_NOT_FOUND",
    "VERSION_NOT_FOUND",
    "ROUTE_NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "MODEL_UNAVAILABLE",
    "INTERNAL_ERROR",
    "FORBIDDEN",
}
# Codes only API Gateway itself answers with (no function equivalent exists).
# QUOTA_EXCEEDED: the API key's usage-plan quota; RATE_LIMITED: the optional WAF web ACL's block
GATEWAY_ONLY_CODES = {
    "THROTTLED",
    "INVALID_REQUEST_BODY",
    "GATEWAY_TIMEOUT",
    "BAD_REQUEST",
    "QUOTA_EXCEEDED",
    "RATE_LIMITED",
}


@pytest.fixture(scope="module")
def template():
    return load_template()


def resolved(template, **overrides: str) -> dict:
    """The template as AWS::LanguageExtensions leaves it for these parameter values (every
    Fn::If resolved): what the alarms and outputs are in that deployment."""
    return resolve_language_extensions(template, parameter_values(template, overrides))


@pytest.fixture(scope="module")
def deployed():
    return {mode: translate({"ApiAuthMode": mode}) for mode in ("API_KEY", "IAM")}


def resources_of_type(template, type_):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def refs(node) -> set[str]:
    """Every name used by Ref, Fn::GetAtt, Fn::Sub ${...} or Condition inside node."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else value
                names = {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                found |= names - set(local)
            elif key in ("Condition", "Fn::If") and isinstance(value, (str, list)):
                found.add(value if isinstance(value, str) else value[0])
            found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


def service_level_alarms(template) -> dict:
    """The alarms on one metric at the service, API or function level (not the per-role ones,
    the metric-math ones or the rollback alarms of a new version: test_deploy_template.py)."""
    return {
        name: a
        for name, a in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        if "MetricName" in a["Properties"]
        and not {d["Name"] for d in a["Properties"]["Dimensions"]} & {"role", "ExecutedVersion"}
    }


def api_methods(translated) -> dict[tuple[str, str], dict]:
    body = translated["Resources"]["InferenceApi"]["Properties"]["Body"]
    return {
        (path, method): op for path, item in body["paths"].items() for method, op in item.items()
    }


# ------------------------------------------------------------------ configuration flow


def test_function_parameters_reach_the_function_only_through_globals(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    for parameter, variable in PARAMETER_ENV.items():
        assert variable in env, f"{variable} missing from Globals.Function.Environment"
        assert parameter in refs(env[variable]), (
            f"{variable} does not come from parameter {parameter}"
        )
    globals_ = template["Globals"]["Function"]
    assert globals_["MemorySize"] == {"Ref": "MemorySize"}
    assert globals_["Timeout"] == {"Ref": "FunctionTimeout"}
    # nothing configured twice: the functions themselves set no environment, memory or timeout
    for name in ("InferenceFunction", "MonitorFunction"):
        function = template["Resources"][name]["Properties"]
        assert not {"MemorySize", "Timeout", "Runtime", "Architectures"} & set(function), name
    assert "Environment" not in template["Resources"]["MonitorFunction"]["Properties"]
    # ... but TracingMode otel's wrapper, which only the inference function may get (on a
    # function without AWS's OpenTelemetry layer, /opt/otel-instrument would not exist)
    own = template["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"]
    assert set(own) == {
        "AWS_LAMBDA_EXEC_WRAPPER",
        "OTEL_AWS_APPLICATION_SIGNALS_ENABLED",
        "OTEL_PYTHON_DISTRO",
        "OTEL_PYTHON_CONFIGURATOR",
    }
    for value in own.values():
        assert value["Fn::If"][0] == "TracingOtel" and value["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def test_bucket_parameter_left_empty_means_the_created_bucket(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MODEL_BUCKET"] == {
        "Fn::If": ["CreateModelBucket", {"Ref": "ModelBucket"}, {"Ref": "BucketName"}]
    }
    assert template["Conditions"]["CreateModelBucket"] == {
        "Fn::Equals": [{"Ref": "BucketName"}, ""]
    }
    assert template["Parameters"]["BucketName"]["Default"] == ""


def test_every_variable_the_function_reads_is_set_by_the_template(template):
    """config.py (and mlcore.settings, which both functions share) read these names; a typo
    on either side would silently leave a default."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    sources = (FUNCTION_DIR / "config.py", ROOT / "mlcore" / "settings.py")
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in sources]
    read = {
        node.value
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"(MODEL|MAX|POWERTOOLS|DEADLINE)_[A-Z_]+", node.value)
    }
    assert {"MODEL_BUCKET", "MODEL_PREFIX", "MODEL_NAME", "MODEL_VERSION"} <= read
    assert read <= set(env), f"read by config.py but not set by the template: {read - set(env)}"


def test_metrics_namespace_and_service_name_live_in_the_template_only(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    namespace = template["Mappings"]["Powertools"]["Metrics"]["Namespace"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {
        "Fn::FindInMap": ["Powertools", "Metrics", "Namespace"]
    }
    assert env["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    for module in FUNCTION_DIR.glob("*.py"):
        assert namespace not in module.read_text(encoding="utf-8"), (
            f"{module.name} hardcodes the namespace"
        )


def test_every_parameter_is_used(template):
    used = refs({k: template[k] for k in ("Globals", "Resources", "Outputs", "Conditions")})
    unused = set(template["Parameters"]) - used
    assert not unused, f"parameters that change nothing: {unused}"


def test_parameter_defaults_satisfy_their_own_constraints(template):
    for name, p in template["Parameters"].items():
        default = str(p.get("Default", ""))
        if "AllowedPattern" in p:
            assert re.fullmatch(p["AllowedPattern"], default), name
        if "AllowedValues" in p:
            assert default in [str(v) for v in p["AllowedValues"]], name
        if p["Type"] == "Number":
            assert (
                p.get("MinValue", float("-inf"))
                <= float(default)
                <= p.get("MaxValue", float("inf"))
            ), name


def test_reserved_concurrency_is_on_by_default_and_0_reserves_none(template):
    """An unauthenticated flood draws on a reservation of its own by default (issue 27)."""
    function = "InferenceFunction"
    assert int(template["Parameters"]["ReservedConcurrency"]["Default"]) > 0
    reserved = deployed_resources(translate())[function]["Properties"]
    assert reserved["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    unreserved = deployed_resources(translate({"ReservedConcurrency": "0"}))[function]
    assert "ReservedConcurrentExecutions" not in unreserved["Properties"]  # AWS::NoValue


def test_ephemeral_storage_and_the_deadline_reach_the_function(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["EphemeralStorage"] == {"Size": {"Ref": "EphemeralStorage"}}
    function = deployed_resources(translate())["InferenceFunction"]
    assert function["Properties"]["EphemeralStorage"] == {"Size": {"Ref": "EphemeralStorage"}}
    parameters = template["Parameters"]
    assert parameters["EphemeralStorage"]["MinValue"] == 512
    assert parameters["EphemeralStorage"]["MaxValue"] == 10240
    # the deadline leaves API Gateway's 29 s and the function's own timeout room to answer
    assert parameters["DeadlineSeconds"]["Default"] < parameters["FunctionTimeout"]["Default"]


def test_model_version_accepts_latest_or_a_positive_integer(template):
    pattern = template["Parameters"]["ModelVersion"]["AllowedPattern"]
    for ok in ("latest", "1", "1764300000"):
        assert re.fullmatch(pattern, ok)
    for bad in ("", "0", "-1", "v1", "01", "latest "):
        assert not re.fullmatch(pattern, bad)


# ------------------------------------------------------------------ function and layer


def test_function_runs_arm64_python313_with_the_layer_tracing_and_json_logs(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == {"Fn::If": ["TracingOff", "PassThrough", "Active"]}
    function = template["Resources"]["InferenceFunction"]
    props = function["Properties"]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    assert props["CodeUri"] == "functions/inference"
    assert props["Handler"] == "app.lambda_handler"
    assert props["Layers"] == [
        {"Ref": "RuntimeLayer"},
        {"Fn::If": ["TracingOtel", {"Ref": "OtelLayerArn"}, {"Ref": "AWS::NoValue"}]},
    ]
    logging = props["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    group = template["Resources"][logging["LogGroup"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert logging["ApplicationLogLevel"] == {"Ref": "LogLevel"}


@pytest.mark.parametrize(
    ("mode", "lambda_tracing", "xray_policy"),
    [
        ("lambda", "Active", True),
        ("otel", "Active", True),
        ("xray-sdk", "Active", True),
        ("off", "PassThrough", False),
    ],
)
def test_tracing_mode_sets_lambdas_tracing_and_the_functions_own(mode, lambda_tracing, xray_policy):
    """TracingMode: Lambda's own segments (Active) unless off; the function reads the mode."""
    from tracing import MODES

    template = load_template()
    parameter = template["Parameters"]["TracingMode"]
    assert sorted(parameter["AllowedValues"]) == sorted(MODES)
    assert template["Globals"]["Function"]["Environment"]["Variables"]["TRACING_MODE"] == {
        "Ref": "TracingMode"
    }
    layer = "arn:aws:lambda:us-east-1:615299751070:layer:AWSOpenTelemetryDistroPython:8"
    translated = translate({"TracingMode": mode, "OtelLayerArn": layer if mode == "otel" else ""})
    function = translated["Resources"]["InferenceFunction"]["Properties"]
    assert function["TracingConfig"] == {"Mode": lambda_tracing}
    # otel: AWS's OpenTelemetry layer and its wrapper, traces to X-Ray without Application
    # Signals; no other mode has either
    variables = function["Environment"]["Variables"]
    assert ({"Ref": "OtelLayerArn"} in function["Layers"]) is (mode == "otel")
    assert (variables.get("AWS_LAMBDA_EXEC_WRAPPER") == "/opt/otel-instrument") is (mode == "otel")
    if mode == "otel":
        assert variables["OTEL_AWS_APPLICATION_SIGNALS_ENABLED"] == "false"
        assert variables["OTEL_PYTHON_CONFIGURATOR"] == "aws_configurator"
    role = translated["Resources"]["InferenceFunctionRole"]["Properties"]
    managed = [arn.rsplit("/", 1)[-1] for arn in role["ManagedPolicyArns"]]
    if xray_policy:
        assert "AWSXrayWriteOnlyAccess" in managed
    # off: API Gateway samples nothing either, so PassThrough has no trace to follow
    (stage,) = [
        r for r in deployed_resources(translated).values() if r["Type"] == "AWS::ApiGateway::Stage"
    ]
    assert stage["Properties"]["TracingEnabled"] is (mode != "off")


def test_layer_is_built_for_the_functions_runtime_and_architecture(template):
    """The layer Makefile's defaults, the layer's compatibility and the function must agree."""
    layer = template["Resources"]["RuntimeLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/runtime"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    makefile = (LAYER_DIR / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^PYTHON_VERSION \?= 3\.13$", makefile, re.M)
    platforms = re.search(r"^PLATFORMS \?= (.+)$", makefile, re.M).group(1).split()
    assert platforms and all(p.endswith("_aarch64") for p in platforms)
    assert "build-RuntimeLayer:" in makefile
    # one target for both functions of the package (BatchFunction: the same code, another handler)
    function_makefile = (FUNCTION_DIR / "Makefile").read_text(encoding="utf-8")
    assert "build-InferenceFunction build-BatchFunction:" in function_makefile


def test_function_policy_only_reads_the_model_prefix(template, deployed):
    policies = template["Resources"]["InferenceFunction"]["Properties"]["Policies"]
    assert len(policies) == 1 and isinstance(policies[0], dict), (
        "only one inline policy, no SAM policy templates"
    )
    statement, listing, kms, capture = policies[0]["Statement"]
    assert capture["Fn::If"][0] == "CaptureEnabled"  # test_capture_write_access_...
    assert kms["Fn::If"][0] == "UseModelKmsKey"  # test_template_security.py
    assert statement["Effect"] == "Allow"
    assert statement["Action"] in ("s3:GetObject", ["s3:GetObject"])
    arn, variables = statement["Resource"]["Fn::Sub"]
    # one model's folder, or with ModelNames every model's (and nothing beside the prefix)
    assert arn == "arn:${AWS::Partition}:s3:::${Bucket}/${ModelPrefix}/${Models}/*"
    assert variables["Bucket"] == {
        "Fn::If": ["CreateModelBucket", {"Ref": "ModelBucket"}, {"Ref": "BucketName"}]
    }
    assert variables["Models"] == {"Fn::If": ["ServeSeveralModels", "*", {"Ref": "ModelName"}]}
    # ModelNames "*" only: listing the prefix's folders, nothing deeper
    condition, listed, _ = listing["Fn::If"]
    assert condition == "ServeEveryModel" and listed["Action"] == "s3:ListBucket"
    assert listed["Condition"]["StringEquals"]["s3:delimiter"] == "/"
    # What SAM adds on top: CloudWatch Logs and X-Ray write access, nothing that reads data.
    role = deployed["API_KEY"]["Resources"]["InferenceFunctionRole"]["Properties"]
    managed = sorted(arn.rsplit("/", 1)[-1] for arn in role["ManagedPolicyArns"])
    assert managed == ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"]
    (inline,) = role["Policies"]
    (granted,) = inline["PolicyDocument"]["Statement"]
    assert granted["Action"] == statement["Action"]
    assert granted["Resource"] == {
        "Fn::Sub": [arn, {"Bucket": {"Ref": "ModelBucket"}, "Models": {"Ref": "ModelName"}}]
    }


def test_several_models_read_every_model_of_the_prefix_and_list_it_only_for_the_wildcard():
    """ModelNames: the roles grant every model's folder under the prefix (one policy, whatever
    the names); "*" adds listing the prefix's folders, which ModelNames "a,b" does not need."""
    for names, listing in (("a,b", False), ("*", True)):
        transformed = translate({"ModelNames": names})["Resources"]
        (inline,) = transformed["InferenceFunctionRole"]["Properties"]["Policies"]
        statements = inline["PolicyDocument"]["Statement"]
        read = statements[0]
        assert read["Resource"]["Fn::Sub"][1]["Models"] == "*"
        listed = [s for s in statements if s.get("Sid") == "ListModelNames"]
        assert bool(listed) == listing
        env = transformed["InferenceFunction"]["Properties"]["Environment"]["Variables"]
        assert env["MODEL_NAMES"] == {"Ref": "ModelNames"}


def test_created_bucket_is_versioned_encrypted_private_and_tls_only(template):
    bucket = template["Resources"]["ModelBucket"]
    assert bucket["Condition"] == "CreateModelBucket"
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (choice,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    condition, kms, rule = choice["Fn::If"]  # SSE-KMS or SSE-S3: test_template_security.py
    assert condition == "UseModelKmsKey"
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    policy = template["Resources"]["ModelBucketPolicy"]
    assert policy["Condition"] == "CreateModelBucket"
    deny = policy["Properties"]["PolicyDocument"]["Statement"][
        0
    ]  # the rest: test_template_security
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_an_existing_bucket_creates_no_bucket():
    translated = translate({"BucketName": "my-models"})
    created = deployed_resources(translated)
    assert "ModelBucket" not in created and "ModelBucketPolicy" not in created
    assert "ModelBucket" in deployed_resources(translate())


# ------------------------------------------------------------------ API


def test_api_events_are_plain_sam_api_events_on_inference_api(template):
    events = template["Resources"]["InferenceFunction"]["Properties"]["Events"]
    routes = set()
    for name, event in events.items():
        assert event["Type"] == "Api", name
        assert event["Properties"]["RestApiId"] == {"Ref": "InferenceApi"}, name
        routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    assert {
        ("POST", "/predict"),
        ("GET", "/health"),
        ("ANY", "/v1/models/{proxy+}"),
        ("ANY", "/{proxy+}"),
    } <= routes


OPEN_ROUTES = {("/", "get"), ("/health", "get"), ("/openapi.json", "get")}
PREFLIGHT = "options"  # CORS preflights: open on every resource (browsers send no key with them)
ANY = "x-amazon-apigateway-any-method"
CATCH_ALL = {("/{proxy+}", ANY), ("/", ANY)}  # only for the function's JSON 404s and 405s


def test_api_key_is_required_everywhere_but_the_open_routes(deployed):
    methods = api_methods(deployed["API_KEY"])
    assert methods[("/predict", "post")]["security"] == [{"api_key": []}]
    # the deep health loads the model: never open (the open /health is shallow)
    assert methods[("/health/deep", ANY)]["security"] == [{"api_key": []}]
    for (path, method), op in methods.items():
        is_open = (path, method) in OPEN_ROUTES or method == PREFLIGHT
        expected = [] if is_open else [{"api_key": []}]
        assert op["security"] == expected, (path, method)
    created = deployed_resources(deployed["API_KEY"])
    assert {"InferenceApiKey", "InferenceUsagePlan", "InferenceUsagePlanKey"} <= set(created)
    plan = created["InferenceUsagePlan"]["Properties"]
    assert plan["Throttle"] == {
        "RateLimit": {"Ref": "ThrottleRateLimit"},
        "BurstLimit": {"Ref": "ThrottleBurstLimit"},
    }
    (stage,) = plan["ApiStages"]
    assert stage["ApiId"] == {"Ref": "InferenceApi"}
    assert created[stage["Stage"]["Ref"]]["Type"] == "AWS::ApiGateway::Stage"


def test_iam_mode_signs_everything_but_the_open_routes_and_creates_no_key(deployed):
    methods = api_methods(deployed["IAM"])
    assert methods[("/health/deep", ANY)]["security"] == [{"AWS_IAM": []}]
    for (path, method), op in methods.items():
        is_open = (path, method) in OPEN_ROUTES or method == PREFLIGHT
        expected = [{"NONE": []}] if is_open else [{"AWS_IAM": []}]
        assert op["security"] == expected, (path, method)
        # API Gateway invokes Lambda through the function's resource policy, not with the
        # caller's credentials (which would need lambda:InvokeFunction for every caller).
        assert "credentials" not in op["x-amazon-apigateway-integration"], (path, method)
    created = deployed_resources(deployed["IAM"])
    assert not {"InferenceApiKey", "InferenceUsagePlan", "InferenceUsagePlanKey"} & set(created)


def test_every_resource_answers_a_cors_preflight_without_a_key(deployed):
    methods = api_methods(deployed["API_KEY"])
    resources = {path for path, _ in methods}
    assert {path for path, method in methods if method == PREFLIGHT} == resources
    # API Gateway's own error answers carry the header only when CORS is on
    for origins, expected in (("", {}), ("https://a.example.com,https://b.example.com", "'*'")):
        translated = translate({"CorsAllowOrigins": origins})
        body = translated["Resources"]["InferenceApi"]["Properties"]["Body"]
        responses = body["x-amazon-apigateway-gateway-responses"]
        assert len(responses) > 10
        for response in responses.values():
            assert response["responseParameters"] == (
                {"gatewayresponse.header.Access-Control-Allow-Origin": expected} if expected else {}
            )
        env = deployed_resources(translated)["InferenceFunction"]["Properties"]["Environment"]
        assert env["Variables"]["CORS_ALLOW_ORIGINS"] == {"Ref": "CorsAllowOrigins"}


def resource_matches(resource: str, path: str) -> bool:
    """API Gateway's path match for one resource: literal segments, {param}, greedy {proxy+}."""
    want, have = resource.strip("/").split("/"), path.strip("/").split("/")
    for i, segment in enumerate(want):
        if segment.endswith("+}"):
            return len(have) > i
        if i >= len(have) or (segment != have[i] and not segment.startswith("{")):
            return False
    return len(want) == len(have)


def test_every_route_of_the_function_reaches_it_through_the_api(deployed):
    """The function's routes (its router's table) are the source; the template's events
    must route each of them to the function by a resource of its own (with its own auth and
    body model), not by the catch-all that only exists for JSON 404s and 405s."""
    import app

    methods = api_methods(deployed["API_KEY"])
    for route in app.registered_routes():
        example = re.sub(r"\{[^}]+\}", "mnist", route.openapi_path)
        serving = [
            (path, method)
            for (path, method) in methods
            if method in (route.method.lower(), ANY)
            and resource_matches(path, example)
            and (path, method) not in CATCH_ALL
        ]
        assert serving, f"no API event routes {route.method} {example} to the function"


def test_every_api_route_invokes_the_function_with_the_proxy_integration(deployed):
    for (path, method), op in api_methods(deployed["API_KEY"]).items():
        integration = op["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy", (path, method)
        # the `live` alias (AutoPublishAlias), never $LATEST
        assert "${InferenceFunctionAliaslive}" in integration["uri"]["Fn::Sub"], (path, method)


def test_why_the_open_routes_are_not_mock_integrations(deployed):
    """docs/security.md ("The API's edge") says why GET /, /health and /openapi.json still invoke
    the function; these are the pinned SAM translator's facts it rests on, so a SAM that changes
    them fails here and the choice can be made again.
    - An inline DefinitionBody without MergeDefinitions gets none of the function's Api events:
      they make only Lambda permissions (samtranslator/model/eventsources/push.py, `if
      explicit_api.get("__MANAGE_SWAGGER") or explicit_api.get("MergeDefinitions")`), so every
      route would be written by hand a second time; and the API's ApiKeyRequired is added to a
      route the body leaves open (`security: []`).
    - SAM's Deployment depends on nothing but the RestApi and is named after the body's hash
      (api_generator._construct_deployment, ApiGatewayDeployment.make_auto_deployable): a
      separate AWS::ApiGateway::Method may be created after it (not in the first deployment)
      and never redeploys the stage when it changes."""
    template = load_template()
    mock = {
        "security": [],
        "x-amazon-apigateway-integration": {
            "type": "mock",
            "requestTemplates": {"application/json": '{"statusCode": 200}'},
            "responses": {"default": {"statusCode": "200"}},
        },
        "responses": {"200": {"description": "the page"}},
    }
    template["Resources"]["InferenceApi"]["Properties"]["DefinitionBody"] = {
        "swagger": "2.0",
        "info": {"title": "open routes only", "version": "1"},
        "paths": {"/": {"get": mock}},
    }
    created = deployed_resources(translate({}, template))
    body = created["InferenceApi"]["Properties"]["Body"]
    assert list(body["paths"]) == ["/"]  # /predict, /health, /v1/...: gone
    assert body["paths"]["/"]["get"]["security"] == [{"api_key": []}]  # no longer open
    (deployment,) = [
        r
        for r in deployed_resources(deployed["API_KEY"]).values()
        if r["Type"] == "AWS::ApiGateway::Deployment"
    ]
    assert "DependsOn" not in deployment
    assert set(deployment["Properties"]) <= {"RestApiId", "Description", "StageName"}


def test_stage_throttles_traces_and_writes_access_logs(deployed):
    created = deployed_resources(deployed["API_KEY"])
    (stage,) = [r for r in created.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    (settings,) = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    log = props["AccessLogSetting"]
    assert log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    sample = log["Format"].replace("$context.error.messageString", '"quoted"')
    sample = re.sub(r"\$context\.[A-Za-z.]+", "x", sample)
    fields = json.loads(sample)  # one JSON object per request
    for field in ("requestId", "status", "latencyMs", "httpMethod", "path", "ip"):
        assert field in fields
    assert created["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {
        "Ref": "LogRetentionDays"
    }


# The API Gateway model for POST /predict, checked the way API Gateway checks it: strict JSON
# (no NaN), then JSON Schema draft 4.


def predict_schema(deployed) -> dict:
    body = deployed["API_KEY"]["Resources"]["InferenceApi"]["Properties"]["Body"]
    op = body["paths"]["/predict"]["post"]
    assert op["requestBody"]["required"] is True
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    validator = body["x-amazon-apigateway-request-validators"][
        op["x-amazon-apigateway-request-validator"]
    ]
    assert validator["validateRequestBody"] is True
    return body["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def gateway_accepts(schema: dict, body: str) -> bool:
    from jsonschema import Draft4Validator

    def no_constants(name):
        raise ValueError(name)

    try:
        document = json.loads(body, parse_constant=no_constants)
    except ValueError:
        return False
    return Draft4Validator(schema).is_valid(document)


def test_predict_body_model_rejects_only_what_is_not_a_request(deployed):
    schema = predict_schema(deployed)
    assert gateway_accepts(schema, '{"instances": [[[0, 1]]]}')
    assert gateway_accepts(schema, '{"images": ["iVBORw0KGgo="]}')
    for bad in ('{"instance": [[0]]}', "[1, 2]", '"text"', "{}", '{"instances": [[0, 1]', ""):
        assert not gateway_accepts(schema, bad), bad


def test_predict_body_model_leaves_precise_errors_to_the_function(deployed):
    """The committed events the function answers on POST /predict pass API Gateway's model,
    except those whose error API Gateway gives first (INVALID_REQUEST_BODY, same status)."""
    schema = predict_schema(deployed)
    expected = json.loads((ROOT / "events" / "expected.json").read_text())
    gateway_may_answer = {"INVALID_JSON", "NON_FINITE_VALUE"}  # NaN is not JSON to API Gateway
    checked = 0
    for name, outcome in expected.items():
        event = json.loads((ROOT / "events" / name).read_text())
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        if (event.get("httpMethod"), event.get("path")) != ("POST", "/predict"):
            continue
        if not headers.get("content-type", "").startswith("application/json"):
            continue
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        accepted = gateway_accepts(schema, body)
        checked += 1
        if outcome.get("code") == "MISSING_FIELD":
            assert not accepted, f"API Gateway should answer {name} itself"
        elif outcome.get("code") in gateway_may_answer:
            pass  # malformed JSON: API Gateway answers first, with the same 400
        else:
            assert accepted, (
                f"API Gateway would reject {name} before the function answers {outcome}"
            )
    assert checked >= 5


def gateway_responses(translated) -> dict:
    body = translated["Resources"]["InferenceApi"]["Properties"]["Body"]
    return body["x-amazon-apigateway-gateway-responses"]


def response_document(response) -> dict:
    return json.loads(response["responseTemplates"]["application/json"])


@pytest.mark.parametrize("mode", ["API_KEY", "IAM"])
def test_gateway_errors_answer_json_error_and_code(deployed, mode):
    responses = gateway_responses(deployed[mode])
    for required in (
        "INVALID_API_KEY",
        "MISSING_AUTHENTICATION_TOKEN",
        "THROTTLED",
        "BAD_REQUEST_BODY",
        "RESOURCE_NOT_FOUND",
        "REQUEST_TOO_LARGE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    ):
        assert required in responses
    for response_type, response in responses.items():
        template = response["responseTemplates"]["application/json"]
        # $context.error.messageString is a quoted JSON string; other variables are raw text
        rendered = template.replace("$context.error.messageString", json.dumps('quoted "message"'))
        assert "$context" not in rendered, f"{response_type}: unquoted $context variable"
        document = json.loads(rendered)
        assert set(document) == {"error", "code"}, response_type
        assert document["error"] and isinstance(document["error"], str), response_type
        assert document["code"] in ERROR_CODES_FROM_CONTRACT | GATEWAY_ONLY_CODES, response_type
    assert response_document(responses["INVALID_API_KEY"])["code"] == "FORBIDDEN"
    assert responses["INVALID_API_KEY"]["statusCode"] == "403"
    assert responses["THROTTLED"]["statusCode"] == "429"
    assert responses["RESOURCE_NOT_FOUND"]["statusCode"] == "404"


def test_unsigned_requests_are_forbidden_in_iam_mode_and_unknown_routes_404_otherwise(deployed):
    iam = gateway_responses(deployed["IAM"])["MISSING_AUTHENTICATION_TOKEN"]
    assert (iam["statusCode"], response_document(iam)["code"]) == ("403", "FORBIDDEN")
    key = gateway_responses(deployed["API_KEY"])["MISSING_AUTHENTICATION_TOKEN"]
    assert (key["statusCode"], response_document(key)["code"]) == ("404", "ROUTE_NOT_FOUND")


# ------------------------------------------------------------------ alarms, dashboard, outputs


def test_alarms_cover_5xx_latency_throttles_errors_and_model_load_failures(template):
    # the API's alarms watch the API that ApiType puts in front of the function: the REST
    # API's metrics by ApiName, or the HTTP API's (5xx, Latency) by ApiId
    api_name = template["Resources"]["InferenceApi"]["Properties"]["Name"]
    stage = {"Name": "Stage", "Value": {"Ref": "StageName"}}
    apis = {
        "rest": ("5XXError", {"Name": "ApiName", "Value": api_name}),
        "http": ("5xx", {"Name": "ApiId", "Value": {"Ref": "InferenceHttpApi"}}),
    }
    for api_type, (errors, api) in apis.items():
        alarms = service_level_alarms(resolved(template, ApiType=api_type))
        assert alarms["Api5xxRateAlarm"]["Properties"]["MetricName"] == errors
        for name in ("Api5xxRateAlarm", "ApiLatencyP99Alarm"):
            assert alarms[name]["Properties"]["Dimensions"] == [api, stage]
    alarms = service_level_alarms(resolved(template))
    watched = {
        (
            a["Properties"]["Namespace"]
            if isinstance(a["Properties"]["Namespace"], str)
            else "custom",
            a["Properties"]["MetricName"],
        ): a["Properties"]
        for a in alarms.values()
    }
    assert watched[("AWS/ApiGateway", "5XXError")]["Statistic"] == "Average"  # a rate
    assert watched[("AWS/ApiGateway", "Latency")]["ExtendedStatistic"] == "p99"
    assert ("AWS/Lambda", "Throttles") in watched
    assert ("AWS/Lambda", "Errors") in watched
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    load = watched[("custom", "ModelLoadFailures")]
    assert load["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert load["Dimensions"] == [
        {"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}
    ]
    for name in alarms:  # as written: an email address given, else no action
        assert template["Resources"][name]["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }


def test_alarm_topic_exists_only_with_an_email():
    assert "AlarmTopic" not in deployed_resources(translate())
    with_email = deployed_resources(translate({"AlarmEmail": "ops@example.com"}))
    (subscription,) = with_email["AlarmTopic"]["Properties"]["Subscription"]
    assert subscription == {"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}


def test_dashboard_is_valid_json_with_the_functions_metrics(template):
    text, variables = template["Resources"]["InferenceDashboard"]["Properties"]["DashboardBody"][
        "Fn::Sub"
    ]
    assert set(re.findall(r"\$\{([^}]+)\}", text)) <= {
        "AWS::Region",
        "AWS::StackName",
        "InferenceFunction",
        "StageName",
        "DriftPsiThreshold",
        "ConfidenceDropThreshold",
        "InputShiftThreshold",
        *variables,
    }
    # every ${...} is a string inside quotes or a number (a period, a threshold)
    document = json.loads(re.sub(r"\$\{[^}]+\}", "0", text))
    metrics_text = json.dumps(document)
    for metric in (
        "InferenceTime",
        "ModelLoadTime",
        "InstancesPerRequest",
        "Confidence",
        "InvalidRequests",
        "ColdStart",
        "Predictions",
        "ModelLoadFailures",
        "PredictionPSI",
        "ConfidenceDrop",
        "InputShift",
        "MonitoredPredictions",
        "CaptureWrites",
        "CaptureFailures",
    ):
        assert metric in metrics_text, metric
    assert "label" in metrics_text and "code" in metrics_text
    assert variables["Namespace"] == {"Fn::FindInMap": ["Powertools", "Metrics", "Namespace"]}


# The metrics API Gateway publishes per API type, and the dimension that names the API.
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html
API_METRICS = {
    "rest": ("ApiName", {"4XXError", "5XXError", "Count", "Latency", "IntegrationLatency"}),
    "http": ("ApiId", {"4xx", "5xx", "Count", "Latency", "IntegrationLatency", "DataProcessed"}),
}


@pytest.mark.parametrize("api_type", ["rest", "http"])
def test_dashboards_api_widgets_follow_the_api_type(template, api_type):
    """The dashboard's API widgets name the metrics of the API that is deployed: an HTTP API's
    by ApiId with 4xx/5xx, a REST API's by ApiName with 4XXError/5XXError."""
    text, variables = resolved(template, ApiType=api_type)["Resources"]["InferenceDashboard"][
        "Properties"
    ]["DashboardBody"]["Fn::Sub"]

    def value(node) -> str:  # a Ref stays a name here, as CloudFormation fills it in later
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return f"<{node['Ref']}>"
        if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
            return node["Fn::Sub"].replace("${AWS::StackName}", "<stack>")
        return "0"  # the namespace (a map lookup): not the API's

    names = {k: value(v) for k, v in variables.items()}
    body = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: str(names.get(m.group(1), 0)), text))
    rows = []  # each API metric row, its "." and "..." shorthand spelled out
    for widget in body["widgets"]:
        previous: list = []
        for row in widget["properties"]["metrics"]:
            if row[0] == "...":
                row = previous[: len(previous) - (isinstance(previous[-1], dict))] + row[1:]
            row = [p if p != "." else previous[i] for i, p in enumerate(row)]
            previous = row
            if row[0] == "AWS/ApiGateway":
                rows.append([p for p in row if not isinstance(p, dict)])
    dimension, allowed = API_METRICS[api_type]
    api = "<InferenceHttpApi>" if api_type == "http" else "<stack>-api"
    assert {r[1] for r in rows} == allowed - {"DataProcessed"}  # every one we chart exists
    for row in rows:
        assert row[2:] == [dimension, api, "Stage", "0"], row
    if api_type == "rest":  # no reference to the HTTP API, which this stack does not create
        assert "InferenceHttpApi" not in json.dumps(variables)


def test_outputs_scripts_look_up(template, deployed):
    outputs = template["Outputs"]
    assert {"ApiUrl", "FunctionName", "ModelBucketName", "ApiKeyId"} <= set(outputs)
    assert outputs["ApiKeyId"]["Condition"] == "UseApiKeyAuth"
    assert outputs["ApiKeyId"]["Value"] == {"Ref": "InferenceApiKey"}
    for api_type, api in (("rest", "InferenceApi"), ("http", "InferenceHttpApi")):
        url = resolved(template, ApiType=api_type)["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
        prefix = f"https://${{{api}}}.execute-api.${{AWS::Region}}."
        assert url.startswith(prefix) and url.endswith("/${StageName}")
    assert outputs["FunctionName"]["Value"] == {"Ref": "InferenceFunction"}
    # every output resolves in both modes (no reference to a resource that mode does not create)
    for mode, translated in deployed.items():
        created = deployed_resources(translated)
        true = set(translated["_conditions_true"])
        for name, output in translated["Outputs"].items():
            if output.get("Condition") and output["Condition"] not in true:
                continue
            missing = (
                {r for r in refs(output["Value"]) if not r.startswith("AWS::")}
                - set(created)
                - set(parameter_values(template))
            )
            assert not missing, f"{mode}: output {name} refers to {missing}"


def test_sam_local_start_api_can_read_every_route():
    """`sam local start-api` (where Docker runs) reads the template with SAM CLI's own API
    provider, which fails on an Fn::If inside an Auth block; every route must come out."""
    from samcli.lib.providers.api_provider import ApiProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(TEMPLATE))
    paths = {route.path for route in ApiProvider(stacks).api.routes}
    assert {"/predict", "/health", "/v1/models/{proxy+}", "/{proxy+}"} <= paths


# ------------------------------------------------------------------ drift monitor


MONITOR_DIR = ROOT / "functions" / "monitor"


def test_monitor_runs_on_a_schedule_of_the_window_with_the_layer(template):
    monitor = template["Resources"]["MonitorFunction"]
    props = monitor["Properties"]
    assert monitor["Metadata"]["BuildMethod"] == "makefile"
    assert "build-MonitorFunction:" in (MONITOR_DIR / "Makefile").read_text(encoding="utf-8")
    assert (props["CodeUri"], props["Handler"]) == ("functions/monitor", "monitor.lambda_handler")
    assert props["Layers"] == [{"Ref": "RuntimeLayer"}]
    group = template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    (event,) = props["Events"].values()
    assert event["Type"] == "Schedule"  # an EventBridge rule
    assert event["Properties"]["Schedule"] == {"Fn::Sub": "rate(${MonitorWindowMinutes} minutes)"}
    # what CloudFormation gets: a rule that invokes the function, at the default rate hourly
    created = deployed_resources(translate())
    (rule,) = [r for r in created.values() if r["Type"] == "AWS::Events::Rule"]
    assert rule["Properties"]["ScheduleExpression"] == {
        "Fn::Sub": "rate(${MonitorWindowMinutes} minutes)"
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["MonitorFunction", "Arn"]}
    assert template["Parameters"]["MonitorWindowMinutes"]["Default"] == 60


def test_monitor_reads_the_registry_and_metrics_only(deployed):
    role = deployed["API_KEY"]["Resources"]["MonitorFunctionRole"]["Properties"]
    (inline,) = role["Policies"]
    read, metrics = inline["PolicyDocument"]["Statement"]
    assert read["Action"] == "s3:GetObject"
    arn, variables = read["Resource"]["Fn::Sub"]
    assert arn == "arn:${AWS::Partition}:s3:::${Bucket}/${ModelPrefix}/${Models}/*"
    assert variables["Models"] == {"Ref": "ModelName"}  # every model's ("*") with ModelNames
    # GetMetricData has no resource-level permissions; nothing that writes
    assert (metrics["Action"], metrics["Resource"]) == ("cloudwatch:GetMetricData", "*")


def test_every_variable_the_monitor_reads_is_set_by_the_template(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    tree = ast.parse((MONITOR_DIR / "monitor_settings.py").read_text(encoding="utf-8"))
    read = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"(MODEL|MONITOR)_[A-Z_]+", node.value)
    }
    assert {"MONITOR_WINDOW_MINUTES", "MONITOR_MIN_PREDICTIONS", "MONITOR_LAG_SECONDS"} <= read
    assert read <= set(env), f"read by the monitor but not set by the template: {read - set(env)}"
    for module in MONITOR_DIR.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert template["Mappings"]["Powertools"]["Metrics"]["Namespace"] not in text


DRIFT_ALARMS = {  # metric -> the threshold parameter (each figure grows with drift)
    "PredictionPSI": "DriftPsiThreshold",
    "ConfidenceDrop": "ConfidenceDropThreshold",
    "InputShift": "InputShiftThreshold",
}


def test_drift_alarms_watch_each_figure_per_service_over_one_window(template):
    template = resolved(template)
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    service = {"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}
    drift = [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("MetricName") in DRIFT_ALARMS
    ]
    # PSI and input shift per service; the confidence drop once per role (stable, canary)
    assert sorted((p["MetricName"], str(p["Dimensions"][1:])) for p in drift) == [
        ("ConfidenceDrop", str([{"Name": "role", "Value": "canary"}])),
        ("ConfidenceDrop", str([{"Name": "role", "Value": "stable"}])),
        ("InputShift", "[]"),
        ("PredictionPSI", "[]"),
    ]
    for props in drift:
        metric, threshold = props["MetricName"], DRIFT_ALARMS[props["MetricName"]]
        assert props["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"], metric
        assert props["Dimensions"][0] == service, metric
        assert props["Threshold"] == {"Ref": threshold}, metric
        assert props["ComparisonOperator"] == "GreaterThanThreshold", metric
        assert props["Statistic"] == "Maximum", metric  # the worst version's figure
        assert props["Period"] == {
            "Fn::FindInMap": ["MonitorWindow", {"Ref": "MonitorWindowMinutes"}, "Seconds"]
        }, metric
        assert props["TreatMissingData"] == "notBreaching", metric  # no traffic, no verdict
    # the defaults come from the literature docs/monitoring.md cites
    parameters = template["Parameters"]
    assert parameters["DriftPsiThreshold"]["Default"] == 0.25
    assert parameters["ConfidenceDropThreshold"]["Default"] == 0.2
    assert parameters["InputShiftThreshold"]["Default"] == 0.2
    # the monitor failing is an alarm too
    errors = [
        a["Properties"]
        for a in service_level_alarms(template).values()
        if a["Properties"]["MetricName"] == "Errors"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Ref": "MonitorFunction"}
    ]
    assert len(errors) == 1


def test_every_window_the_schedule_allows_has_its_alarm_period(template):
    windows = template["Parameters"]["MonitorWindowMinutes"]["AllowedValues"]
    periods = template["Mappings"]["MonitorWindow"]
    assert sorted(int(k) for k in periods) == sorted(windows)
    for minutes in windows:
        assert periods[str(minutes)]["Seconds"] == minutes * 60


# ------------------------------------------------------------------ capture


def test_capture_is_off_by_default_and_writes_to_a_bucket_of_its_own(template):
    parameters = template["Parameters"]
    assert parameters["CaptureSampleRate"]["Default"] == 0
    assert (
        parameters["CaptureSampleRate"]["MinValue"],
        parameters["CaptureSampleRate"]["MaxValue"],
    ) == (0, 1)
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["CAPTURE_BUCKET"] == {"Ref": "CaptureBucket"}  # never the registry's
    assert env["CAPTURE_PREFIX"] == {"Fn::FindInMap": ["Capture", "Keys", "Prefix"]}
    assert template["Conditions"]["CaptureEnabled"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CaptureSampleRate"}, 0]}]
    }


def test_capture_bucket_is_encrypted_private_tls_only_and_expires_everything(template):
    bucket = template["Resources"]["CaptureBucket"]
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    (lifecycle,) = props["LifecycleConfiguration"]["Rules"]
    assert lifecycle["Status"] == "Enabled" and "Prefix" not in lifecycle  # the whole bucket
    assert lifecycle["ExpirationInDays"] == {"Ref": "CaptureRetentionDays"}
    assert lifecycle["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "CaptureRetentionDays"}
    }
    assert "VersioningConfiguration" not in props  # a deleted capture is gone
    (deny,) = template["Resources"]["CaptureBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def test_capture_write_access_only_when_capture_is_on_and_only_its_prefix():
    def statements(overrides):
        role = translate(overrides)["Resources"]["InferenceFunctionRole"]["Properties"]
        (inline,) = role["Policies"]
        return inline["PolicyDocument"]["Statement"]

    (read,) = statements({})  # the default: capture off, no write access at all
    assert read["Action"] == "s3:GetObject"
    read, write = statements({"CaptureSampleRate": "0.05"})
    assert write["Action"] == "s3:PutObject"
    arn, variables = write["Resource"]["Fn::Sub"]
    # the model's folder (every model's with ModelNames: capture keys start with the name)
    assert arn == "arn:${AWS::Partition}:s3:::${CaptureBucket}/${Prefix}/${Models}/*"
    assert variables == {
        "Prefix": {"Fn::FindInMap": ["Capture", "Keys", "Prefix"]},
        "Models": {"Ref": "ModelName"},
    }


def test_the_http_api_has_the_rest_apis_routes_and_opens_the_same_ones():
    """ApiType http: the same (path, method) routes as the REST API's events, the same ones
    open (GET /, /health, /openapi.json), every other one behind IAM, or a JWT with an
    issuer (but CORS preflights, open as on the REST API); each integration is the `live`
    alias in payload format 2.0; nothing of it exists with the REST API."""
    from local.template import Template

    rest = Template(TEMPLATE, {"ApiAuthMode": "IAM"}).methods()
    http = Template(TEMPLATE, {"ApiType": "http", "ApiAuthMode": "IAM"}).methods()
    assert set(http) == set(rest)
    for route, method in http.items():
        assert method.iam == rest[route].iam, route
    preflights = {(path, "OPTIONS") for path, _ in rest}  # open: CORS preflights
    assert {r for r, m in http.items() if not m.iam} == {
        ("/", "GET"),
        ("/health", "GET"),
        ("/openapi.json", "GET"),
    } | preflights
    jwt = Template(
        TEMPLATE,
        {"ApiType": "http", "HttpApiJwtIssuer": "https://id.example", "HttpApiJwtAudience": "a"},
    ).methods()
    assert {r for r, m in jwt.items() if m.jwt} == {r for r, m in http.items() if m.iam}
    assert not any(m.iam for m in jwt.values())
    translated = translate({"ApiType": "http", "ApiAuthMode": "IAM"})
    created = deployed_resources(translated)
    body = created["InferenceHttpApi"]["Properties"]["Body"]
    for operations in body["paths"].values():
        for operation in operations.values():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["payloadFormatVersion"] == "2.0"
            assert "${InferenceFunction.Arn}:live/" in integration["uri"]["Fn::Sub"]
    permission = created["InferenceHttpApiPermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "InferenceFunctionAliaslive"}
    assert "${InferenceHttpApi}/*" in permission["SourceArn"]["Fn::Sub"]
    default = deployed_resources(translate({}))
    assert not {n for n in default if n.startswith("InferenceHttpApi")}


def test_rules_refuse_the_http_api_with_api_keys_or_waf_and_jwt_without_it(template):
    rules = template["Rules"]
    http = rules["HttpApiNeedsIamAuth"]
    assert http["RuleCondition"] == {"Fn::Equals": [{"Ref": "ApiType"}, "http"]}
    asserted = [a["Assert"] for a in http["Assertions"]]
    assert {"Fn::Equals": [{"Ref": "ApiAuthMode"}, "IAM"]} in asserted
    assert {"Fn::Equals": [{"Ref": "WebAclRateLimit"}, "0"]} in asserted
    jwt = [a["Assert"] for a in rules["JwtNeedsTheHttpApi"]["Assertions"]]
    assert {"Fn::Equals": [{"Ref": "ApiType"}, "http"]} in jwt
