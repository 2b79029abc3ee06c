"""The API's edge in template.yaml (issue 27), on what CloudFormation deploys (SAM's own
translator): the optional WAF web ACL with its rate-based rule, the API key's daily quota,
a concurrency reservation by default, and the 429s they answer in the API's error shape."""

from __future__ import annotations

import json
import tomllib

from tests.sam_support import ROOT, deployed_resources, load_template, translate


def test_no_web_acl_by_default_and_one_with_a_rate_rule_when_asked():
    assert "InferenceWebAcl" not in deployed_resources(translate())
    resources = deployed_resources(translate({"WebAclRateLimit": "2000"}))
    acl = resources["InferenceWebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in acl["Rules"]}
    rate = rules["rate-per-ip"]
    assert rate["Statement"]["RateBasedStatement"] == {
        "Limit": {"Ref": "WebAclRateLimit"},
        "EvaluationWindowSec": 300,
        "AggregateKeyType": "IP",
    }
    block = rate["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == 429
    body = json.loads(acl["CustomResponseBodies"][block["CustomResponseBodyKey"]]["Content"])
    assert set(body) == {"error", "code"} and body["code"] == "RATE_LIMITED"
    # no managed rule group that inspects bodies (the common rule set blocks bodies > 8 KB)
    groups = [
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    ]
    assert groups == ["AWSManagedRulesAmazonIpReputationList"]
    association = resources["InferenceWebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["InferenceWebAcl", "Arn"]}
    # SAM resolved the stage reference: the association names the API's deployed stage
    arn = json.dumps(association["ResourceArn"])
    assert "InferenceApi" in arn and "/stages/" in arn and ".Stage" not in arn


def test_prod_has_the_web_acl_and_a_reservation():
    with (ROOT / "samconfig.toml").open("rb") as f:
        prod = tomllib.load(f)["prod"]["deploy"]["parameters"]["parameter_overrides"]
    values = dict(item.split("=", 1) for item in prod)
    assert int(values["WebAclRateLimit"]) > 0 and int(values["ReservedConcurrency"]) > 0


def test_the_api_key_has_a_daily_quota_and_its_429_answers_like_the_api():
    plan = deployed_resources(translate())["InferenceUsagePlan"]["Properties"]
    assert plan["Quota"] == {"Limit": {"Ref": "ApiQuotaPerDay"}, "Period": "DAY"}
    assert int(load_template()["Parameters"]["ApiQuotaPerDay"]["Default"]) > 0
    unlimited = deployed_resources(translate({"ApiQuotaPerDay": "0"}))["InferenceUsagePlan"]
    assert "Quota" not in unlimited["Properties"]
    responses = load_template()["Resources"]["InferenceApi"]["Properties"]["GatewayResponses"]
    quota = responses["QUOTA_EXCEEDED"]
    assert quota["StatusCode"] == "429"
    assert json.loads(quota["ResponseTemplates"]["application/json"])["code"] == "QUOTA_EXCEEDED"
