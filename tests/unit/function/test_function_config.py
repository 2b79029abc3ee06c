"""config.load_settings: the environment the template sets -> Settings, validated once."""

from __future__ import annotations

import pytest

from config import load_settings
from tests.function_support import template_environment

EVERY_VARIABLE = {
    "MODEL_BUCKET": "b",
    "MODEL_PREFIX": "/registry/",
    "MODEL_NAME": "fashion",
    "MODEL_VERSION": "0042",
    "MODEL_REFRESH_SECONDS": "2.5",
    "MAX_INSTANCES": "8",
    "MAX_BODY_BYTES": "1000",
    "MODEL_CACHE_DIR": "/tmp/x",
    "MAX_IMAGE_PIXELS": "100",
    "MAX_BATCH_PIXELS": "1000",
    "DEADLINE_SECONDS": "3",
    "DEADLINE_MARGIN_SECONDS": "0.25",
    "MODEL_MEMORY_MAX_BYTES": "0",
    "CAPTURE_BUCKET": "captures",
    "CAPTURE_PREFIX": "/captured/",
    "CAPTURE_SAMPLE_RATE": "0.25",
}


def test_the_template_defaults_are_the_contract():
    settings = load_settings(template_environment())
    assert (settings.prefix, settings.model_name, settings.model_version) == (
        "models",
        "mnist",
        "latest",
    )
    assert settings.refresh_seconds == 300
    assert settings.max_instances == 256
    assert settings.max_body_bytes == 1_048_576
    assert settings.cache_dir == "/tmp/models"
    assert settings.follows_latest
    assert (settings.max_image_pixels, settings.max_batch_pixels) == (4096 * 4096, 4096 * 4096)
    assert (settings.deadline_seconds, settings.deadline_margin_seconds) == (4, 0.5)
    assert settings.memory_max_bytes == 64 << 20
    # capture is opt-in: nothing is kept unless CaptureSampleRate says so
    assert (settings.capture_prefix, settings.capture_sample_rate) == ("captures", 0.0)


@pytest.mark.parametrize(
    "missing", sorted(set(EVERY_VARIABLE) - {"MODEL_PREFIX", "CAPTURE_PREFIX"})
)
def test_the_function_restates_no_default(missing):
    """The template is the one source of defaults: a variable it did not set is an error."""
    environ = {k: v for k, v in EVERY_VARIABLE.items() if k != missing}
    with pytest.raises(ValueError, match=f"{missing} is not set"):
        load_settings(environ)


def test_every_variable_is_read():
    settings = load_settings(EVERY_VARIABLE)
    assert settings.prefix == "registry"
    assert settings.model_version == "42" and not settings.follows_latest
    assert (settings.refresh_seconds, settings.max_instances, settings.max_body_bytes) == (
        2.5,
        8,
        1000,
    )
    assert (settings.max_image_pixels, settings.max_batch_pixels) == (100, 1000)
    assert (settings.deadline_seconds, settings.deadline_margin_seconds) == (3, 0.25)
    assert settings.memory_max_bytes == 0  # every model through /tmp
    assert (settings.capture_bucket, settings.capture_prefix) == ("captures", "captured")
    assert settings.capture_sample_rate == 0.25


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MODEL_VERSION": "v2"}, "MODEL_VERSION"),
        ({"MODEL_VERSION": "0"}, "MODEL_VERSION"),
        ({"MAX_INSTANCES": "-3"}, "MAX_INSTANCES"),
        ({"MAX_BODY_BYTES": "1MB"}, "MAX_BODY_BYTES"),
        ({"MODEL_REFRESH_SECONDS": "soon"}, "MODEL_REFRESH_SECONDS"),
        ({"MODEL_NAME": "../etc"}, "MODEL_NAME"),
        ({"DEADLINE_SECONDS": "0"}, "DEADLINE_SECONDS"),
        ({"DEADLINE_MARGIN_SECONDS": "-1"}, "DEADLINE_MARGIN_SECONDS"),
        ({"MAX_BATCH_PIXELS": "0"}, "MAX_BATCH_PIXELS"),
        ({"MODEL_MEMORY_MAX_BYTES": "-5"}, "MODEL_MEMORY_MAX_BYTES"),
        ({"CAPTURE_SAMPLE_RATE": "1.5"}, "CAPTURE_SAMPLE_RATE"),
        ({"CAPTURE_SAMPLE_RATE": "-0.1"}, "CAPTURE_SAMPLE_RATE"),
        ({"CAPTURE_SAMPLE_RATE": "some"}, "CAPTURE_SAMPLE_RATE"),
        ({"CAPTURE_SAMPLE_RATE": "nan"}, "CAPTURE_SAMPLE_RATE"),
    ],
)
def test_a_bad_value_names_its_variable(environ, named):
    with pytest.raises(ValueError, match=named):
        load_settings({**EVERY_VARIABLE, **environ})


ON_DEMAND_API = {
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "_HANDLER": "app.lambda_handler",
    "TRACING_MODE": "lambda",
}


@pytest.mark.parametrize(
    ("environ", "early"),
    [
        ({}, True),
        ({"TRACING_MODE": "off"}, True),
        # a tracing SDK: the first request starts the load, its spans that request's children
        ({"TRACING_MODE": "xray-sdk"}, False),
        ({"TRACING_MODE": "otel"}, False),
        ({"TRACING_MODE": "Lambda"}, False),  # not a mode: left to load_tracing_mode's error
        # init ahead of requests: app.preload_model loads and waits instead
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}, False),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}, False),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": None}, False),  # not on Lambda (tests, local runs)
        # other handlers that import app: the batch job names its versions; the otel wrapper
        ({"_HANDLER": "batch.lambda_handler"}, False),
        ({"_HANDLER": "otel_wrapper.lambda_handler"}, False),
        ({"_HANDLER": None}, False),
    ],
)
def test_the_model_loads_during_import_only_on_an_on_demand_start_of_the_api(environ, early):
    from config import loads_model_at_import

    merged = {k: v for k, v in {**ON_DEMAND_API, **environ}.items() if v is not None}
    assert loads_model_at_import(merged) is early
