"""template.yaml's safe deployments (issue 13), checked on what SAM's own translator makes of
it (tests/sam_support.py): the `live` alias on every route, the CodeDeploy deployment group
with its rollback alarms and pre-traffic hook, SnapStart or provisioned concurrency, reserved
concurrency, and the template Rules that make invalid combinations impossible."""

from __future__ import annotations

import itertools

import pytest

from tests.sam_support import deployed_resources, load_template, translate

ALIAS = "InferenceFunctionAliaslive"


@pytest.fixture(scope="module")
def template():
    return load_template()


@pytest.fixture(scope="module")
def default():
    return deployed_resources(translate())


def version_id(resources) -> str:
    (name,) = [
        n
        for n, r in resources.items()
        if r["Type"] == "AWS::Lambda::Version" and n.startswith("InferenceFunctionVersion")
    ]
    return name


def test_every_api_route_and_invoke_permission_names_the_live_alias(default):
    paths = default["InferenceApi"]["Properties"]["Body"]["paths"]
    uris = [
        op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for item in paths.values()
        for op in item.values()
    ]
    assert len(uris) >= 8
    for uri in uris:
        assert "${" + ALIAS + "}" in uri, uri
        assert "InferenceFunction.Arn" not in uri
    permissions = [
        r
        for r in default.values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(permissions) == len(uris)
    for permission in permissions:
        assert permission["Properties"]["FunctionName"] == {"Ref": ALIAS}
    alias = default[ALIAS]
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {
        "Fn::GetAtt": [version_id(default), "Version"]
    }


def test_deployment_group_shifts_by_the_parameter_with_rollback_alarms_and_the_hook(default):
    group = default["InferenceFunctionDeploymentGroup"]["Properties"]
    assert group["DeploymentConfigName"]["Fn::Sub"][1] == {"ConfigName": "Canary10Percent5Minutes"}
    assert group["AlarmConfiguration"]["Enabled"] is True
    alarms = {a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]}
    assert alarms == {
        "NewVersionErrorsAlarm",
        "NewVersionLatencyP99Alarm",
        "Api5xxRateAlarm",
        "ModelLoadFailuresAlarm",
    }
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    update = default[ALIAS]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}
    assert update["DeploymentGroupName"] == {"Ref": "InferenceFunctionDeploymentGroup"}
    dev = deployed_resources(translate({"DeploymentType": "AllAtOnce"}))
    config = dev["InferenceFunctionDeploymentGroup"]["Properties"]["DeploymentConfigName"]
    assert config["Fn::Sub"][1] == {"ConfigName": "AllAtOnce"}


def test_rollback_alarms_watch_the_new_version_only(default):
    version = version_id(default)
    for name, metric, stat in (
        ("NewVersionErrorsAlarm", "Errors", "Sum"),
        ("NewVersionLatencyP99Alarm", "Duration", "p99"),
    ):
        props = default[name]["Properties"]
        assert props["Namespace"] == "AWS/Lambda" and props["MetricName"] == metric
        assert stat in (props.get("Statistic"), props.get("ExtendedStatistic"))
        dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert dims == {
            "FunctionName": {"Ref": "InferenceFunction"},
            "Resource": {"Fn::Sub": "${InferenceFunction}:live"},
            "ExecutedVersion": {"Fn::GetAtt": [version, "Version"]},
        }


def test_pre_traffic_hook_is_named_for_codedeploy_not_deployed_itself_and_checks_the_new_version(
    default,
):
    hook = default["PreTrafficHookFunction"]["Properties"]
    assert hook["FunctionName"]["Fn::Sub"].startswith("CodeDeployHook_")
    assert hook["Handler"] == "hook.lambda_handler"
    # no alias, version or deployment group of its own
    assert not [
        n
        for n in default
        if n.startswith("PreTrafficHookFunction")
        and n not in ("PreTrafficHookFunction", "PreTrafficHookFunctionRole")
    ]
    version = {"Ref": version_id(default)}
    assert hook["Environment"]["Variables"]["TARGET_FUNCTION_VERSION_ARN"] == version
    statements = [
        s
        for p in default["PreTrafficHookFunctionRole"]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
    ]
    by_action = {s["Action"]: s for s in statements}
    assert by_action["lambda:InvokeFunction"]["Resource"] == version
    assert "codedeploy:PutLifecycleEventHookExecutionStatus" in by_action
    assert by_action["s3:GetObject"]["Resource"]["Fn::Sub"][0].endswith("/latest.json")
    # the default CodeDeploy role may invoke only CodeDeployHook_* functions
    role = default["CodeDeployServiceRole"]["Properties"]
    assert any("AWSCodeDeployRoleForLambda" in str(arn) for arn in role["ManagedPolicyArns"])


def test_a_changed_configuration_publishes_a_new_version():
    """SAM hashes parameter Refs unresolved (aws/serverless-application-model#3820): a new
    parameter value alone publishes nothing. ConfigurationDigest (make deploy's digest of the
    values) is the one parameter SAM resolves into the hash; the layer's properties count too."""
    base = version_id(deployed_resources(translate()))
    assert base == version_id(deployed_resources(translate({"MemorySize": "2048"})))  # the trap
    assert base != version_id(deployed_resources(translate({"ConfigurationDigest": "abc123"})))
    template = load_template()
    assert template["Resources"]["RuntimeLayer"]["Properties"]["PublishLambdaVersion"] is True
    function = template["Resources"]["InferenceFunction"]["Properties"]
    assert function["AutoPublishAliasAllProperties"] is True


def test_snapstart_is_off_by_default_and_on_published_versions_when_asked(default):
    assert default["InferenceFunction"]["Properties"]["SnapStart"] == {"ApplyOn": "None"}
    on = deployed_resources(translate({"SnapStart": "true"}))
    assert on["InferenceFunction"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "ProvisionedConcurrencyConfig" not in on[ALIAS]["Properties"]


def test_provisioned_concurrency_goes_on_the_alias_and_reserved_on_the_function(default):
    assert "ProvisionedConcurrencyConfig" not in default[ALIAS]["Properties"]
    none = deployed_resources(translate({"ReservedConcurrency": "0"}))
    assert "ReservedConcurrentExecutions" not in none["InferenceFunction"]["Properties"]
    both = deployed_resources(
        translate({"ProvisionedConcurrency": "5", "ReservedConcurrency": "20"})
    )
    assert both[ALIAS]["Properties"]["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}
    }
    assert both["InferenceFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Ref": "ReservedConcurrency"
    }


# ------------------------------------------------------------------ template Rules


def _value(node, values):
    if isinstance(node, dict):
        ((fn, args),) = node.items()
        if fn == "Ref":
            return values[args]
        return _holds(node, values)
    if isinstance(node, list):
        return [_value(x, values) for x in node]
    return str(node)


def _holds(expr, values) -> bool:
    """CloudFormation's rule functions used in the template, evaluated as it does."""
    ((fn, args),) = expr.items()
    if fn == "Fn::Equals":
        return _value(args[0], values) == _value(args[1], values)
    if fn == "Fn::Not":
        return not _holds(args[0], values)
    if fn == "Fn::And":
        return all(_holds(a, values) for a in args)
    if fn == "Fn::Or":
        return any(_holds(a, values) for a in args)
    if fn == "Fn::Contains":
        return _value(args[1], values) in _value(args[0], values)
    raise ValueError(f"rule function {fn} not evaluated here")


def rules_accept(template, **overrides) -> bool:
    values = {n: str(p.get("Default", "")) for n, p in template["Parameters"].items()}
    values.update({k: str(v) for k, v in overrides.items()})
    for rule in template["Rules"].values():
        if "RuleCondition" in rule and not _holds(rule["RuleCondition"], values):
            continue
        if not all(_holds(a["Assert"], values) for a in rule["Assertions"]):
            return False
    return True


def test_rules_accept_exactly_the_valid_combinations(template):
    """Every combination of SnapStart, ProvisionedConcurrency (each allowed value),
    EphemeralStorage and ReservedConcurrency (0..120): the Rules accept it exactly when Lambda
    would (SnapStart excludes provisioned concurrency and /tmp above 512 MB; provisioned at most
    the reservation, when there is one)."""
    allowed = template["Parameters"]["ProvisionedConcurrency"]["AllowedValues"]
    checked = 0
    for snap, pc, tmp, reserved in itertools.product(
        ("true", "false"), allowed, (512, 513, 10240), range(121)
    ):
        valid = (snap == "false" or (int(pc) == 0 and tmp == 512)) and (
            reserved == 0 or int(pc) <= reserved
        )
        got = rules_accept(
            template,
            SnapStart=snap,
            ProvisionedConcurrency=pc,
            EphemeralStorage=tmp,
            ReservedConcurrency=reserved,
        )
        assert got == valid, (snap, pc, tmp, reserved)
        checked += 1
    assert checked == 2 * len(allowed) * 3 * 121
    assert rules_accept(template)  # the defaults


def test_every_provisioned_value_above_one_has_its_rule(template):
    allowed = [int(v) for v in template["Parameters"]["ProvisionedConcurrency"]["AllowedValues"]]
    for pc in allowed:
        expected = pc >= 2
        assert (f"Provisioned{pc}WithinReserved" in template["Rules"]) == expected, pc


# ------------------------------------------------------------------ model rollouts: per role


def test_per_role_alarms_watch_the_role_dimension_set(template):
    """Error rate and ModelLoadFailures for each role, and the canary's confidence against the
    stable model's, on the `role` dimension set the function adds beside the service-level
    sets (which the existing alarms keep watching)."""
    resources = template["Resources"]
    service = {"Name": "service", "Value": {"Ref": "AWS::StackName"}}
    for role in ("stable", "canary"):
        prefix = role.capitalize()
        loads = resources[f"{prefix}ModelLoadFailuresAlarm"]["Properties"]
        assert loads["MetricName"] == "ModelLoadFailures"
        assert loads["Dimensions"] == [service, {"Name": "role", "Value": role}]
        rate = resources[f"{prefix}ErrorRateAlarm"]["Properties"]
        stats = {m["Id"]: m["MetricStat"] for m in rate["Metrics"] if "MetricStat" in m}
        assert stats["errors"]["Metric"]["MetricName"] == "ServerErrors"
        assert stats["answered"]["Stat"] == "SampleCount"
        for stat in stats.values():
            assert stat["Metric"]["Dimensions"] == [service, {"Name": "role", "Value": role}]
        (expression,) = [m for m in rate["Metrics"] if m.get("ReturnData")]
        assert "errors" in expression["Expression"] and "answered" in expression["Expression"]
    drop = resources["CanaryConfidenceDropAlarm"]["Properties"]
    roles = {
        m["Id"]: m["MetricStat"]["Metric"]["Dimensions"][1]["Value"]
        for m in drop["Metrics"]
        if "MetricStat" in m
    }
    assert roles == {"stable": "stable", "canary": "canary"}
    assert drop["Threshold"] == {"Ref": "CanaryConfidenceDrop"}
    # the service-level ModelLoadFailures alarm keeps its one dimension
    assert resources["ModelLoadFailuresAlarm"]["Properties"]["Dimensions"] == [service]
