"""Request bodies -> validated float32 batches of shape (N, H, W, C), or an ApiError saying why
not. Images are prepared as the model's manifest says (mlcore.images).

Every check names what was wrong and what is allowed, without echoing the caller's values.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import json
from typing import Any

import numpy as np

from errors import ApiError
from mlcore.images import BlankImage, InputSpec, prepare

JSON_MEDIA_TYPE = "application/json"
MAX_IMAGE_PIXELS = 4096 * 4096  # decoding bombs: a 1 MB PNG can claim billions of pixels
IMAGE_FORMATS = ("PNG", "JPEG")


def check_content_type(content_type: str | None, also_allowed: tuple[str, ...] = ()) -> None:
    """application/json (any parameters, e.g. charset) or no Content-Type at all."""
    if not content_type:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE and media_type not in also_allowed:
        raise ApiError(
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type {media_type[:60]!r} is not supported; send the body as "
            f"{JSON_MEDIA_TYPE} (charset utf-8)",
        )


def _reject_constant(token: str) -> Any:
    raise ApiError(
        "NON_FINITE_VALUE", f"{token} is not allowed: every value must be a finite number"
    )


def parse_json_body(text: str | None, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object (NaN/Infinity tokens refused)."""
    if text is None or not text.strip():
        raise ApiError("INVALID_JSON", "the request body is empty; send a JSON object")
    # an ASCII str's length is its UTF-8 size: no copy of a large body just to count it
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ApiError(
            "PAYLOAD_TOO_LARGE",
            f"the request body is {size} bytes; at most {max_bytes} are allowed",
        )
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            "INVALID_JSON",
            f"the request body is not valid JSON "
            f"({exc.msg} at line {exc.lineno} column {exc.colno})",
        ) from None
    except RecursionError:
        raise ApiError("INVALID_JSON", "the request body is nested too deeply") from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise ApiError(
            "INVALID_JSON", "the request body has a number with too many digits"
        ) from None
    if not isinstance(payload, dict):
        raise ApiError("INVALID_JSON", "the request body must be a JSON object")
    return payload


def check_batch_size(count: int, max_instances: int, field: str) -> None:
    if count == 0:
        raise ApiError(
            "EMPTY_BATCH", f"'{field}' is empty; send between 1 and {max_instances} items"
        )
    if count > max_instances:
        raise ApiError(
            "TOO_MANY_INSTANCES",
            f"'{field}' has {count} items; at most {max_instances} are allowed per request",
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a number"


def _leaves(nested: list, depth: int):
    """The values `depth` levels down a rectangular nested list, without copying."""
    for _ in range(depth - 1):
        nested = itertools.chain.from_iterable(nested)
    return nested


def may_contain_booleans(text: str) -> bool:
    """A JSON body without the literals true and false holds no boolean: one C-speed substring
    search instead of a Python-level look at every value (4 ms for 256 instances)."""
    return "true" in text or "false" in text


def instances_to_batch(
    instances: Any,
    spec: InputSpec,
    max_instances: int,
    field: str = "instances",
    booleans_possible: bool = True,
) -> np.ndarray:
    """A JSON array of instances (each in one of spec.accepted_shapes) -> float32 (N, H, W, C).

    booleans_possible=False (see may_contain_booleans) skips the scan for booleans."""
    if not isinstance(instances, list):
        raise ApiError(
            "INVALID_TYPE",
            f"'{field}' must be an array of instances, each {spec.describe_shapes()} numbers",
        )
    check_batch_size(len(instances), max_instances, field)
    try:
        array = np.asarray(instances)
    except (ValueError, TypeError):
        raise ApiError(
            "INVALID_SHAPE",
            f"'{field}' is not a rectangular array: "
            f"every instance must have shape {spec.describe_shapes()}",
        ) from None

    if array.dtype.kind in "iuf":
        # numpy silently turns booleans mixed with numbers into 0/1, so look at the JSON values.
        if booleans_possible and bool in set(map(type, _leaves(instances, array.ndim))):
            raise ApiError(
                "INVALID_TYPE", f"'{field}' contains a boolean; every value must be a number"
            )
    elif array.dtype.kind == "O" and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in array.ravel()
    ):
        # integers too large for int64
        raise ApiError(
            "VALUE_OUT_OF_RANGE", f"'{field}' values must be within [{spec.low:g}, {spec.high:g}]"
        )
    else:
        if array.dtype.kind == "O":
            offender = next(
                v for v in array.ravel() if not isinstance(v, int | float) or isinstance(v, bool)
            )
            found = _json_type(offender)
        else:
            found = {"b": "a boolean", "U": "a string", "S": "a string"}.get(
                array.dtype.kind, "a non-number"
            )
        raise ApiError("INVALID_TYPE", f"'{field}' contains {found}; every value must be a number")

    if array.shape[1:] not in spec.accepted_shapes:
        got = list(array.shape[1:])
        raise ApiError(
            "INVALID_SHAPE",
            f"each of '{field}' has shape {got}; "
            f"the model accepts {spec.describe_shapes()} per instance",
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():  # 1e999 parses to infinity
        raise ApiError("NON_FINITE_VALUE", f"'{field}' contains a value too large to be finite")
    low, high = array.min(), array.max()
    if low < spec.low or high > spec.high:
        raise ApiError(
            "VALUE_OUT_OF_RANGE",
            f"'{field}' values must be within [{spec.low:g}, {spec.high:g}]; "
            f"found values from {float(low):g} to {float(high):g}",
        )
    check_value_scale(array, spec, field)
    return array.astype(np.float32).reshape(len(instances), *spec.accepted_shapes[0])


def check_value_scale(array: np.ndarray, spec: InputSpec, field: str) -> None:
    """Values scaled to [0, 1] sent to a model of 0..255 would be answered with confident
    garbage (a near-black image): refused instead, with the range to send. Integers 0 and 1
    alone are allowed (a legitimately dark image); fractions are what gives 0..1 away."""
    if spec.high <= 1 or array.dtype.kind != "f" or array.max() > 1 or array.min() < 0:
        return
    if np.any(array != np.round(array)):
        raise ApiError(
            "WRONG_VALUE_RANGE",
            f"every value of '{field}' lies within [0, 1]: this model takes values "
            f"{spec.low:g}..{spec.high:g} (8-bit pixels); multiply by {spec.high:g}",
        )


def _image_bytes(item: Any, index: int, field: str) -> bytes:
    if isinstance(item, dict) and set(item) == {"b64"}:  # TF Serving's binary encoding
        item = item["b64"]
    if not isinstance(item, str):
        raise ApiError(
            "INVALID_TYPE",
            f"{field}[{index}] is {_json_type(item)}; expected a base64 PNG or JPEG string",
        )
    if item.startswith("data:") and "," in item:  # data URL, as a browser canvas produces
        item = item.split(",", 1)[1]
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("INVALID_IMAGE", f"{field}[{index}] is not valid base64") from None


def _decode_image(data: bytes, spec: InputSpec, index: int, field: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # only when an image arrives

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ApiError(
                    "INVALID_IMAGE",
                    f"{field}[{index}] is {image.width}x{image.height} pixels; "
                    f"at most {MAX_IMAGE_PIXELS} pixels are allowed",
                )
            return prepare(image, spec)
    except ApiError:
        raise
    except BlankImage as exc:
        raise ApiError("INVALID_IMAGE", f"{field}[{index}]: {exc}; send a drawn digit") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ApiError(
            "INVALID_IMAGE", f"{field}[{index}] could not be decoded; send a PNG or JPEG image"
        ) from None


def images_to_batch(
    images: Any, spec: InputSpec, max_instances: int, field: str = "images"
) -> np.ndarray:
    """Base64 PNG/JPEG strings (or TF Serving's {"b64": ...}) -> float32 (N, H, W, C), each
    prepared as the model's manifest says (colour, size, resize or digit policy)."""
    if not isinstance(images, list):
        raise ApiError("INVALID_TYPE", f"'{field}' must be an array of base64 PNG or JPEG strings")
    check_batch_size(len(images), max_instances, field)
    return np.stack(
        [
            _decode_image(_image_bytes(item, index, field), spec, index, field)
            for index, item in enumerate(images)
        ]
    )


def is_binary_batch(values: Any) -> bool:
    """TF Serving's binary convention: every instance an object {"b64": "<base64>"}."""
    return (
        isinstance(values, list)
        and bool(values)
        and all(isinstance(v, dict) and set(v) == {"b64"} for v in values)
    )
