"""router: path templates, static paths before templates, exception handlers by class
hierarchy, the not-found handler, and answers in the REST proxy integration's shape."""

from __future__ import annotations

import json

import pytest

from router import JSON, Response, Router


class Refused(ValueError):
    pass


@pytest.fixture
def router():
    router = Router()

    @router.get("/v1/models/{name}")
    @router.get("/v1/models/{name}/versions/{version}")
    def status(name, version=None):
        return {"name": name, "version": version}

    @router.post("/v1/models/{name}:predict")
    def predict(name):
        return {"predicted": name, "seen": router.context.get("seen")}

    @router.get("/v1/models/latest")
    def static():
        return {"static": True}

    @router.get("/boom")
    def boom():
        raise Refused("no")

    @router.get("/crash")
    def crash():
        raise KeyError("x")

    @router.exception_handler(ValueError)
    def value_error(exc):
        return Response(400, JSON, json.dumps({"error": str(exc)}), {"X-Why": "value"})

    @router.not_found
    def missing(method, path):
        return Response(404, JSON, json.dumps({"missing": f"{method} {path}"}))

    return router


def answer(router, method, path):
    response = router.resolve({"httpMethod": method, "path": path}, None)
    return response["statusCode"], json.loads(response["body"]), response


def test_templates_pass_their_parameters_by_name(router):
    assert answer(router, "GET", "/v1/models/mnist")[:2] == (
        200,
        {"name": "mnist", "version": None},
    )
    assert answer(router, "GET", "/v1/models/mnist/versions/3")[1] == {
        "name": "mnist",
        "version": "3",
    }
    assert answer(router, "POST", "/v1/models/mnist:predict")[1]["predicted"] == "mnist"


def test_a_parameter_is_url_safe_never_spans_a_slash_and_the_whole_path_must_match(router):
    assert answer(router, "GET", "/v1/models/a/b")[0] == 404
    assert answer(router, "GET", "/v1/models/mnist/")[0] == 404
    assert answer(router, "POST", "/v1/models/mnist:predictx")[0] == 404
    assert answer(router, "GET", "/v1/models/\u2603")[0] == 404  # not a word character


def test_a_static_path_wins_over_a_template_and_methods_are_case_insensitive(router):
    assert answer(router, "get", "/v1/models/latest")[1] == {"static": True}


def test_an_exception_goes_to_the_handler_of_its_nearest_registered_class(router):
    status, body, response = answer(router, "GET", "/boom")
    assert (status, body) == (400, {"error": "no"})
    assert response["multiValueHeaders"] == {"Content-Type": [JSON], "X-Why": ["value"]}
    with pytest.raises(KeyError):  # no handler: raised to the caller (app.py has one for all)
        answer(router, "GET", "/crash")


def test_unmatched_requests_reach_the_not_found_handler_with_method_and_path(router):
    assert answer(router, "DELETE", "/v1/models/mnist")[:2] == (
        404,
        {"missing": "DELETE /v1/models/mnist"},
    )


def test_answers_have_the_rest_proxy_shape_and_the_context_lasts_one_request(router):
    router.context["seen"] = "this request"
    status, body, response = answer(router, "POST", "/v1/models/m:predict")
    assert body == {"predicted": "m", "seen": "this request"}
    assert response == {
        "statusCode": 200,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "body": '{"predicted":"m","seen":"this request"}',
        "isBase64Encoded": False,
    }
    assert router.context == {} and router.event == {}
    assert answer(router, "POST", "/v1/models/m:predict")[1]["seen"] is None


def test_routes_keep_their_documentation_for_openapi(router):
    route = router.routes[0]
    assert (route.method, route.openapi_path, route.parameters) == (
        "GET",
        "/v1/models/{name}/versions/{version}",
        ["name", "version"],
    )


def test_a_dict_answer_is_json_of_the_very_same_values():
    router = Router()
    value = {"p": [1e-05, 0.00390625, 1.0, 0.0], "label": "chat \u00fc", "version": 1796000000}

    @router.get("/x")
    def x():
        return value

    response = router.resolve({"httpMethod": "GET", "path": "/x"}, None)
    assert json.loads(response["body"]) == value


def test_without_a_not_found_handler_an_unmatched_request_is_a_plain_404():
    router = Router()

    @router.get("/x")
    def x():
        return {}

    response = router.resolve({"httpMethod": "GET", "path": "/y"}, None)
    assert response["statusCode"] == 404 and json.loads(response["body"]) == {
        "message": "Not found"
    }
    assert response["multiValueHeaders"] == {"Content-Type": ["application/json"]}


def test_get_post_and_route_keep_every_route_documentation_field():
    router = Router()
    documentation = {
        "summary": "s",
        "responses": {200: {"description": "ok"}},
        "request_body": {"type": "object"},
    }

    @router.get("/g", **documentation)
    @router.post("/p", **documentation)
    @router.route("put", "/r", **documentation)
    def handler():
        return {}

    for route in router.routes:
        assert (route.summary, route.responses, route.request_body) == (
            "s",
            {200: {"description": "ok"}},
            {"type": "object"},
        )
    assert [route.method for route in router.routes] == ["PUT", "POST", "GET"]


def test_a_handler_sees_this_invocations_event_and_context_only_during_it():
    router = Router()
    seen = []

    @router.get("/x")
    def x():
        seen.append((router.event["path"], router.lambda_context))
        return {}

    assert (router.event, router.lambda_context, router.context) == ({}, None, {})
    router.resolve({"httpMethod": "GET", "path": "/x"}, "the context")
    assert seen == [("/x", "the context")]
    assert (router.event, router.lambda_context, router.context) == ({}, None, {})


def test_the_methods_serving_a_path_are_those_whose_route_answers_it(router):
    # the 405's Allow header: GET /v1/models/{name} matches .../mnist:predict (the name takes
    # the ':predict'), but only POST's own ':predict' route answers it
    assert router.methods_serving("/v1/models/mnist:predict") == {"POST"}
    assert router.methods_serving("/v1/models/mnist") == {"GET"}
    # a colon inside the parameter of a ':verb' route: the route still answers (its handler
    # judges the name), as match() routes it
    assert router.match("POST", "/v1/models/a:b:predict")[1] == {"name": "a:b"}
    assert router.methods_serving("/v1/models/a:b:predict") == {"POST"}
    assert router.methods_serving("/nowhere") == set()


def test_a_dict_is_answered_as_the_json_response_of_it_would_be():
    """proxy_response builds a dict's answer directly (no Response first): the same answer,
    key for key and in the same order, as Response(200, JSON, its JSON) gives."""
    import orjson

    from router import JSON, Response, proxy_response

    result = {"predictions": [{"label": "7", "confidence": 1e-05}], "model": {"name": "é"}}
    direct = proxy_response(result)
    assert direct == proxy_response(Response(200, JSON, orjson.dumps(result).decode()))
    assert list(direct) == ["statusCode", "multiValueHeaders", "body", "isBase64Encoded"]
    assert json.loads(direct["body"]) == result
