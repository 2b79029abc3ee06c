"""preprocessing: every caller mistake -> its stable code, and good input -> (N, H, W, C) float32.
SPEC is the schema-1 fixture's (tests/fixtures/mnist-schema1: a grey 28x28 model without a
channel axis, images resized); RGB_SPEC a colour model's."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from errors import ApiError
from mlcore.images import InputSpec
from preprocessing import (
    ImageBudget,
    images_to_batch,
    instances_and_range,
    parse_json_body,
    read_json,
)
from tests.function_support import schema1_manifest

SPEC = InputSpec(height=28, width=28, channels=1, channel_axis=False)
RGB_SPEC = InputSpec(height=8, width=6, channels=3)
DIGIT = (np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)
BUDGET = ImageBudget(max_image_pixels=4096 * 4096, max_batch_pixels=24 << 20)


def instances_to_batch(*args, **kwargs):
    """instances_and_range's batch alone (what most of these tests look at)."""
    return instances_and_range(*args, **kwargs)[0]


def code_of(call, *args, **kwargs) -> tuple[str, int, str]:
    with pytest.raises(ApiError) as raised:
        call(*args, **kwargs)
    return raised.value.code, raised.value.status, raised.value.message


def encode(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def test_spec_from_the_manifest(manifest):
    assert InputSpec.from_manifest(manifest) == InputSpec(28, 28, 1, policy="digit")
    assert InputSpec.from_manifest(schema1_manifest()) == SPEC


# -- content type and body --------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
    ],
)
def test_json_content_types_are_accepted(content_type):
    assert read_json('{"instances": [1]}', content_type, 1000) == {"instances": [1]}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png"]
)
def test_json_is_read_whatever_the_content_type_says(content_type):
    # as TF Serving reads it: a browser's fetch sends text/plain, curl -d form-urlencoded
    assert read_json('{"instances": [1]}', content_type, 1000) == {"instances": [1]}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png"]
)
def test_a_body_that_is_not_json_with_another_content_type_is_415(content_type):
    code, status, message = code_of(read_json, "a=1&b=2", content_type, 1000)
    assert (code, status) == ("UNSUPPORTED_MEDIA_TYPE", 415)
    assert "application/json" in message and "not JSON" in message


@pytest.mark.parametrize("content_type", [None, "application/json; charset=utf-8"])
def test_a_body_that_is_not_json_with_a_json_content_type_is_400(content_type):
    assert code_of(read_json, "a=1", content_type, 1000)[:2] == ("INVALID_JSON", 400)


def test_too_large_stays_413_whatever_the_content_type():
    assert code_of(read_json, "x" * 2000, "text/plain", 1000)[:2] == ("PAYLOAD_TOO_LARGE", 413)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "INVALID_JSON"),
        ("   ", "INVALID_JSON"),
        ('{"instances": [1, 2', "INVALID_JSON"),
        ("instances = [1, 2]", "INVALID_JSON"),
        ("[1, 2, 3]", "INVALID_JSON"),  # not an object
        ("[" * 100_000 + "]" * 100_000, "INVALID_JSON"),  # deeper than the parser goes
        ('{"instances": [' + "9" * 5000 + "]}", "INVALID_JSON"),  # beyond int's digit limit
        ("\ud800", "INVALID_JSON"),  # a lone surrogate, which a JSON-escaped event body can carry
        ('{"instances": [[NaN]]}', "NON_FINITE_VALUE"),
        ('{"instances": [[Infinity]]}', "NON_FINITE_VALUE"),
        ('{"instances": [[-Infinity]]}', "NON_FINITE_VALUE"),
    ],
)
def test_bad_bodies(body, code):
    assert code_of(parse_json_body, body, 1 << 30)[:2] == (code, 400)


def test_body_over_the_limit_is_413():
    body = '{"instances": [' + ",".join(["0"] * 600) + "]}"
    code, status, message = code_of(parse_json_body, body, 1000)
    assert (code, status) == ("PAYLOAD_TOO_LARGE", 413)
    assert "1000" in message


def test_a_good_body():
    assert parse_json_body('{"instances": [[1.5]]}', 100) == {"instances": [[1.5]]}


# -- instances --------------------------------------------------------------------------


def test_the_three_instance_shapes_give_the_same_batch():
    square = DIGIT.tolist()
    channel = DIGIT[..., None].tolist()
    flat = DIGIT.ravel().tolist()
    batches = [instances_to_batch([x, x], SPEC, 256) for x in (square, channel, flat)]
    for batch in batches:
        assert batch.shape == (2, 28, 28, 1) and batch.dtype == np.float32
        np.testing.assert_array_equal(batch[1, :, :, 0], DIGIT)


def test_a_colour_model_takes_hwc_or_flat_instances():
    pixels = np.arange(8 * 6 * 3).reshape(8, 6, 3)
    for instance in (pixels.tolist(), pixels.ravel().tolist()):
        batch = instances_to_batch([instance], RGB_SPEC, 4)
        assert batch.shape == (1, 8, 6, 3)
        np.testing.assert_array_equal(batch[0], pixels)
    assert code_of(instances_to_batch, [pixels[..., 0].tolist()], RGB_SPEC, 4)[0] == (
        "INVALID_SHAPE"
    )


@pytest.mark.parametrize("values", [np.full((28, 28), 0.5), np.linspace(0, 1, 784).reshape(28, 28)])
def test_values_scaled_to_0_1_are_refused_with_the_range_to_send(values):
    code, status, message = code_of(instances_to_batch, [values.tolist()], SPEC, 1)
    assert (code, status) == ("WRONG_VALUE_RANGE", 400)
    assert "0..255" in message and "multiply by 255" in message
    assert "the scaling is inside the model" in message


@pytest.mark.parametrize(
    "values", [np.linspace(-1, 1, 784).reshape(28, 28), np.full((28, 28), -0.25)]
)
def test_values_scaled_to_minus_1_1_are_refused_with_raw_pixels_to_send(values):
    """A client that scales as the model's training did ([-1, 1]) is told to send raw pixels:
    the model's graph holds the scaling."""
    code, status, message = code_of(instances_to_batch, [values.tolist()], SPEC, 1)
    assert (code, status) == ("VALUE_OUT_OF_RANGE", 400)
    assert "look scaled to [-1, 1]" in message
    assert "send raw pixels 0..255, the scaling is inside the model" in message


def test_out_of_range_values_of_a_model_not_taking_pixels_get_no_pixel_advice():
    spec = InputSpec(28, 28, low=-1.0, high=1.0)
    code, _, message = code_of(instances_to_batch, [np.full((28, 28), 3.0).tolist()], spec, 1)
    assert code == "VALUE_OUT_OF_RANGE" and "pixels" not in message


def test_a_dark_image_of_integers_0_and_1_is_still_an_image():
    values = (np.arange(784).reshape(28, 28) % 2).tolist()
    assert instances_to_batch([values], SPEC, 1).max() == 1


def test_floats_within_range_are_fine():
    batch = instances_to_batch([np.full((28, 28), 254.5).tolist()], SPEC, 1)
    assert batch[0, 0, 0] == 254.5


@pytest.mark.parametrize(
    ("instances", "code"),
    [
        ([], "EMPTY_BATCH"),
        ({"0": DIGIT.tolist()}, "INVALID_TYPE"),
        ("pixels", "INVALID_TYPE"),
        ([np.zeros((27, 28)).tolist()], "INVALID_SHAPE"),
        ([np.zeros((28, 28, 3)).tolist()], "INVALID_SHAPE"),
        ([np.zeros(783).tolist()], "INVALID_SHAPE"),
        ([1, 2, 3], "INVALID_SHAPE"),  # scalars, not images
        ([DIGIT.tolist(), DIGIT[:27].tolist()], "INVALID_SHAPE"),  # ragged batch
        ([[[0] * 28] * 27 + [[0] * 27]], "INVALID_SHAPE"),  # ragged instance
        ([[[True] * 28] * 28], "INVALID_TYPE"),
        ([[[0] * 27 + [True]] + [[0] * 28] * 27], "INVALID_TYPE"),  # one boolean among numbers
        ([[["12"] * 28] * 28], "INVALID_TYPE"),
        ([[[0] * 27 + [None]] + [[0] * 28] * 27], "INVALID_TYPE"),
        ([[[0] * 27 + [{"v": 1}]] + [[0] * 28] * 27], "INVALID_TYPE"),
        ([[[0] * 27 + [1e999]] + [[0] * 28] * 27], "NON_FINITE_VALUE"),  # what "1e999" parses to
        ([[[0] * 27 + [256]] + [[0] * 28] * 27], "VALUE_OUT_OF_RANGE"),
        ([[[0] * 27 + [-0.5]] + [[0] * 28] * 27], "VALUE_OUT_OF_RANGE"),
        ([[[0] * 27 + [10**30]] + [[0] * 28] * 27], "VALUE_OUT_OF_RANGE"),
    ],
)
def test_bad_instances(instances, code):
    assert code_of(instances_to_batch, instances, SPEC, 256)[0] == code


def test_too_many_instances_is_413_before_anything_else():
    code, status, message = code_of(instances_to_batch, [[0]] * 5, SPEC, 4)
    assert (code, status) == ("TOO_MANY_INSTANCES", 413)
    assert "at most 4" in message


def test_messages_say_what_is_allowed_and_never_echo_the_input():
    _, _, message = code_of(instances_to_batch, [[["TOPSECRET"] * 28] * 28], SPEC, 256)
    assert "TOPSECRET" not in message and "number" in message
    _, _, message = code_of(instances_to_batch, [np.zeros((27, 28)).tolist()], SPEC, 256)
    assert "[28, 28, 1] or [28, 28] or [784]" in message
    _, _, message = code_of(instances_to_batch, [np.full((28, 28), 300).tolist()], SPEC, 256)
    assert "[0, 255]" in message


# -- images -----------------------------------------------------------------------------


def test_png_and_jpeg_decode_to_grey_levels():
    png = encode(Image.fromarray(DIGIT, mode="L"))
    jpeg = encode(Image.fromarray(DIGIT, mode="L"), "JPEG")
    batch = images_to_batch(
        [png, {"b64": png}, f"data:image/png;base64,{png}", jpeg], SPEC, 256, BUDGET
    )
    assert batch.shape == (4, 28, 28, 1) and batch.dtype == np.float32
    for exact in batch[:3, :, :, 0]:
        np.testing.assert_array_equal(exact, DIGIT)
    assert np.abs(batch[3, :, :, 0] - DIGIT).mean() < 10  # lossy


def test_colour_and_size_are_normalised():
    rgb = Image.fromarray(np.stack([DIGIT] * 3, axis=-1), mode="RGB").resize((56, 56))
    batch = images_to_batch([encode(rgb)], SPEC, 1, BUDGET)
    assert batch.shape == (1, 28, 28, 1)
    assert np.abs(batch[0, :, :, 0] - DIGIT).mean() < 20
    grey = Image.fromarray(DIGIT, mode="L")
    assert images_to_batch([encode(grey)], RGB_SPEC, 1, BUDGET).shape == (1, 8, 6, 3)


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ("not base64 !!", "INVALID_IMAGE"),
        (base64.b64encode(b"GIF89a not a png").decode(), "INVALID_IMAGE"),
        (encode(Image.new("L", (8, 8)), "GIF"), "INVALID_IMAGE"),  # only PNG and JPEG
        (base64.b64encode(b"\x89PNG\r\n\x1a\n truncated").decode(), "INVALID_IMAGE"),
        (42, "INVALID_TYPE"),
        ([1, 2], "INVALID_TYPE"),
    ],
)
def test_bad_images(item, code):
    assert code_of(images_to_batch, [item], SPEC, 256, BUDGET)[0] == code


def test_a_decompression_bomb_is_refused_before_decoding():
    huge = encode(Image.new("L", (5000, 5000)))  # a few KB of PNG, 25 M pixels
    code, _, message = code_of(images_to_batch, [huge], SPEC, 1, BUDGET)
    assert code == "INVALID_IMAGE" and "5000x5000" in message


def test_images_must_be_a_bounded_list():
    assert code_of(images_to_batch, "abc", SPEC, 1, BUDGET)[0] == "INVALID_TYPE"
    assert code_of(images_to_batch, [], SPEC, 1, BUDGET)[0] == "EMPTY_BATCH"
    assert code_of(images_to_batch, ["a", "b"], SPEC, 1, BUDGET)[0] == "TOO_MANY_INSTANCES"


# Bodies where orjson and the json module could differ (each goes to the json module, which
# parses or refuses it as before) and bodies both parse: parse_json_body's answer is the json
# module's either way, values and types alike.
JSON_EDGE_BODIES = [
    '{"instances": [[1, 2.5, -0, -0.0, 1E5, 5e-324, 0.1]]}',
    '{"a": 1, "a": 2}',
    ' {"a" : [ 1 , 2 ] , "b": {"c": [true, false, null]}} ',
    '{"big": 9223372036854775807, "bigger": 18446744073709551616, "low": -9223372036854775809}',
    '{"long": 0.12345678901234567890123}',
    '{"inf": 1e999}',
    '{"text": "\\ud83d\\ude00 \\u00e9"}',
    '{"lone": "\\ud800"}',
    '{"é": "non-ASCII text"}',
    '{"deep": ' + "[" * 1500 + "]" * 1500 + "}",
]


@pytest.mark.parametrize("body", JSON_EDGE_BODIES)
def test_the_fast_parser_gives_what_the_json_module_gives(body):
    import json

    import preprocessing

    try:
        expected = json.loads(body)
    except RecursionError:
        with pytest.raises(ApiError) as raised:
            parse_json_body(body, 1 << 20)
        assert raised.value.code == "INVALID_JSON"
        return
    got = parse_json_body(body, 1 << 20)
    assert repr(got) == repr(expected)  # the same values and types (1 is not 1.0)
    fast = preprocessing._fast_decode(body)
    assert fast is None or repr(fast) == repr(expected)


def test_the_fast_parser_is_used_for_a_plain_body_and_not_where_it_could_differ():
    import preprocessing

    assert preprocessing._fast_decode('{"instances": [[0, 255]]}') == {"instances": [[0, 255]]}
    for body in ('{"a": 1234567890123456789}', '{"a": NaN}', '{"a": "é"}', '{"a": 1e999}'):
        assert preprocessing._fast_decode(body) is None


@pytest.mark.parametrize(
    ("body", "code"),
    [("{bad", "INVALID_JSON"), ('{"a": NaN}', "NON_FINITE_VALUE"), ("[1]", "INVALID_JSON")],
)
def test_refusals_are_the_json_module_s(body, code):
    with pytest.raises(ApiError) as raised:
        parse_json_body(body, 1 << 20)
    assert raised.value.code == code


# Number and string tokens as a client may write them (long mantissas, exponents, escapes,
# control characters, lone surrogates): whatever path parses a body, the answer is the json
# module's, or its refusal with the same code.
NUMBER_TOKENS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)
STRING_TOKENS = st.lists(
    st.sampled_from(
        ["a", "é", "\\n", "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\/", "\t", "\x7f"]
    ),
    max_size=6,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMBER_TOKENS | STRING_TOKENS.map(lambda s: f'"{s}"'), min_size=1, max_size=5))
def test_any_number_or_string_parses_as_the_json_module_parses_it(tokens):
    import json

    body = '{"instances": [' + ", ".join(tokens) + "]}"
    try:
        expected = repr(json.loads(body))
    except ValueError:
        expected = None  # refused: parse_json_body says so with a stable code
    if expected is None:
        with pytest.raises(ApiError) as raised:
            parse_json_body(body, 1 << 20)
        assert raised.value.code == "INVALID_JSON"
    else:
        assert repr(parse_json_body(body, 1 << 20)) == expected
