"""Request bodies -> validated float32 batches of shape (N, H, W, C), or an ApiError saying why
not. Images are prepared as the model's manifest says (mlcore.images).

Every check names what was wrong and what is allowed, without echoing the caller's values.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from errors import ApiError
from mlcore.deadline import Deadline
from mlcore.images import BlankImage, InputSpec, prepare
from mlcore.inference import (
    TensorError,
    check_count,
    check_numbers,
    check_range,
    json_type,
    rectangular,
)

JSON_MEDIA_TYPE = "application/json"
IMAGE_FORMATS = ("PNG", "JPEG")


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def read_json(text: str | None, content_type: str | None, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object whatever its Content-Type says, as TF Serving reads it (a
    browser's fetch sends text/plain, curl -d form-urlencoded). A body that is not JSON is a
    400 INVALID_JSON, or a 415 when its Content-Type says it is something else."""
    try:
        return parse_json_body(text, max_bytes)
    except ApiError as exc:
        media_type = _media_type(content_type)
        if exc.code != "INVALID_JSON" or media_type in (None, JSON_MEDIA_TYPE):
            raise
        raise ApiError(
            "UNSUPPORTED_MEDIA_TYPE",
            f"the body is not JSON ({exc.message}) and its Content-Type is {media_type[:60]!r}; "
            f"send a JSON object (Content-Type {JSON_MEDIA_TYPE})",
        ) from None


def _reject_constant(token: str) -> Any:
    raise ApiError(
        "NON_FINITE_VALUE", f"{token} is not allowed: every value must be a finite number"
    )


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one, not one per request
# Bytes -> b"0" for a digit, b" " for anything else: a run of 19 digits (b"0" * 19) is an
# integer orjson may turn into a float (beyond 64 bits) where the json module keeps an int.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def _fast_decode(text: str) -> Any:
    """The body parsed by orjson (about 4x faster than the json module: 8 against 35 us for
    one 28x28 instance) where both give the very same objects: an ASCII body without an
    integer of 19 or more digits, which orjson parses. Anything else (orjson refuses NaN,
    Infinity, numbers that overflow to infinity, lone surrogates, nesting deeper than 1024,
    anything invalid) returns None, and the json module parses it or says why not, as before."""
    if not text.isascii() or _LONG_DIGIT_RUN in text.encode("ascii").translate(_DIGITS):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


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
    payload = _fast_decode(text)
    try:
        if payload is None:
            payload = _DECODER.decode(text)
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
    try:
        check_count(count, max_instances, field)
    except TensorError as exc:
        raise ApiError(exc.code, exc.message) from None


def may_contain_booleans(text: str) -> bool:
    """A JSON body without the literals true and false holds no boolean: one C-speed substring
    search instead of a Python-level look at every value (4 ms for 256 instances)."""
    return "true" in text or "false" in text


def instances_and_range(
    instances: Any,
    spec: InputSpec,
    max_instances: int,
    field: str = "instances",
    booleans_possible: bool = True,
) -> tuple[np.ndarray, tuple[float, float]]:
    """A JSON array of instances (each in one of spec.accepted_shapes) -> float32 (N, H, W, C),
    and the batch's smallest and largest value (the range check's own, which the request's
    input statistics reuse: emf.request).

    booleans_possible=False (see may_contain_booleans) skips the scan for booleans."""
    try:  # one handler for the whole path (free in CPython 3.11 until something is raised)
        return _instances_and_range(instances, spec, max_instances, field, booleans_possible)
    except TensorError as exc:
        raise ApiError(exc.code, exc.message) from None


def _instances_and_range(
    instances: Any, spec: InputSpec, max_instances: int, field: str, booleans_possible: bool
) -> tuple[np.ndarray, tuple[float, float]]:
    if not isinstance(instances, list):
        raise ApiError(
            "INVALID_TYPE",
            f"'{field}' must be an array of instances, each {spec.describe_shapes()} numbers",
        )
    check_count(len(instances), max_instances, field)
    array = rectangular(instances, field, spec.describe_shapes, "every instance must have shape ")
    check_numbers(array, instances, field, booleans_possible)
    if array.shape[1:] not in spec.accepted_shapes:
        got = list(array.shape[1:])
        raise ApiError(
            "INVALID_SHAPE",
            f"each of '{field}' has shape {got}; "
            f"the model accepts {spec.describe_shapes()} per instance",
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():  # 1e999 parses to infinity
        raise ApiError("NON_FINITE_VALUE", f"'{field}' contains a value too large to be finite")
    value_range = check_range(array, spec.low, spec.high, field)
    return array.astype(np.float32).reshape(len(instances), *spec.accepted_shapes[0]), value_range


def _image_bytes(item: Any, index: int, field: str) -> bytes:
    if isinstance(item, dict) and set(item) == {"b64"}:  # TF Serving's binary encoding
        item = item["b64"]
    if not isinstance(item, str):
        raise ApiError(
            "INVALID_TYPE",
            f"{field}[{index}] is {json_type(item)}; expected a base64 PNG or JPEG string",
        )
    if item.startswith("data:") and "," in item:  # data URL, as a browser canvas produces
        item = item.split(",", 1)[1]
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("INVALID_IMAGE", f"{field}[{index}] is not valid base64") from None


@dataclass(frozen=True)
class ImageBudget:
    """The work one request's images may cost, checked before it is done: decoded pixels per
    image and across the batch (from the image headers), and time (the invocation's deadline,
    checked before each image is decoded)."""

    max_image_pixels: int
    max_batch_pixels: int
    deadline: Deadline | None = None


def _open_image(data: bytes, where: str, budget: ImageBudget):
    """The image opened (its header read, nothing decoded), its size checked. `where` names
    it in messages (images[3], or a batch job's object key)."""
    from PIL import Image, UnidentifiedImageError  # only when an image arrives

    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ApiError(
            "INVALID_IMAGE", f"{where} could not be decoded; send a PNG or JPEG image"
        ) from None
    pixels = image.width * image.height
    if pixels > budget.max_image_pixels:
        image.close()
        raise ApiError(
            "INVALID_IMAGE",
            f"{where} is {image.width}x{image.height} pixels; "
            f"at most {budget.max_image_pixels} pixels are allowed per image",
        )
    problem = jpeg_problem(data, image.width, image.height) if image.format == "JPEG" else None
    if problem:
        image.close()
        raise ApiError("INVALID_IMAGE", f"{where} is a damaged or truncated JPEG ({problem})")
    return image


def _decode_image(image, spec: InputSpec, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with image:
            return prepare(image, spec)
    except BlankImage as exc:
        raise ApiError("INVALID_IMAGE", f"{where}: {exc}; send a drawn digit") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        # Pillow refuses truncated files (ImageFile.LOAD_TRUNCATED_IMAGES is False)
        raise ApiError(
            "INVALID_IMAGE",
            f"{where} could not be decoded (damaged or truncated); send a whole PNG or JPEG image",
        ) from None


def decode_image(data: bytes, spec: InputSpec, budget: ImageBudget, where: str) -> np.ndarray:
    """One PNG or JPEG -> float32 (H, W, C), prepared as the model's manifest says, with the
    checks images_to_batch makes of each image (header and pixel budget before decoding, JPEG
    structure); an ApiError naming `where` otherwise. The batch function's per-object path."""
    return _decode_image(_open_image(data, where, budget), spec, where)


def images_to_batch(
    images: Any, spec: InputSpec, max_instances: int, budget: ImageBudget, field: str = "images"
) -> np.ndarray:
    """Base64 PNG/JPEG strings (or TF Serving's {"b64": ...}) -> float32 (N, H, W, C), each
    prepared as the model's manifest says (colour, size, resize or digit policy).

    Every image's header is read and the batch's pixels counted before any is decoded."""
    if not isinstance(images, list):
        raise ApiError("INVALID_TYPE", f"'{field}' must be an array of base64 PNG or JPEG strings")
    check_batch_size(len(images), max_instances, field)
    opened = []
    try:
        total = 0
        for index, item in enumerate(images):
            where = f"{field}[{index}]"
            opened.append(_open_image(_image_bytes(item, index, field), where, budget))
            total += opened[-1].width * opened[-1].height
            if total > budget.max_batch_pixels:
                raise ApiError(
                    "PAYLOAD_TOO_LARGE",
                    f"the images of '{field}' add up to more than {budget.max_batch_pixels} "
                    f"pixels (reached at {field}[{index}]); send fewer or smaller images",
                )
        arrays = []
        for index, image in enumerate(opened):
            if budget.deadline is not None and budget.deadline.expired:
                raise ApiError(
                    "PAYLOAD_TOO_LARGE",
                    f"decoding '{field}' did not finish in the time this request has "
                    f"(stopped at {field}[{index}]); send fewer or smaller images",
                )
            arrays.append(_decode_image(image, spec, f"{field}[{index}]"))
        return np.stack(arrays)
    finally:
        for image in opened:
            image.close()


# -- JPEG structure ----------------------------------------------------------------------------
# libjpeg decodes a JPEG whose scan data ends early (an end-of-image marker in the middle of
# the image) without an error: it fills the rest with the last colour, and the model answers
# confidently about an image nobody sent. Pillow does not expose libjpeg's warning count, so
# the file's markers are read here: each component needs a scan with its DC coefficients, and
# with Huffman coding each 8x8 block costs at least 2 bits in a sequential scan (a DC code and
# an end-of-block code) and 1 bit in a progressive DC scan. A file whose scans are shorter than
# that cannot hold the image its header claims. (A whole file cut and closed with an
# end-of-image marker inside a long enough scan still decodes padded.)

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RST0-7, SOI


def _entropy_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at `pos` ends: the next marker that is not a
    stuffed 0xFF00 or a restart marker (or the end of the data)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1
            continue
        return pos


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def jpeg_problem(data: bytes, width: int, height: int) -> str | None:
    """Why this JPEG's scans cannot hold a width x height image, or None."""
    components: dict[int, tuple[int, int]] = {}  # id -> (h, v) sampling factors
    frame = None
    dc_bits: dict[int, int] = {}  # component id -> entropy bits of the scans with its DC
    pos = 2
    try:
        while pos < len(data):
            if data[pos] != 0xFF:
                return "bytes outside any segment"
            while pos < len(data) and data[pos] == 0xFF:
                pos += 1
            marker = data[pos]
            pos += 1
            if marker == 0xD9:  # end of image
                break
            if marker in _STANDALONE:
                continue
            length = int.from_bytes(data[pos : pos + 2], "big")
            segment = data[pos + 2 : pos + length]
            if length < 2 or len(segment) != length - 2:
                return "a segment runs past the end of the file"
            pos += length
            if marker in _SOF_MARKERS:
                frame = marker
                for i in range(segment[5]):
                    c = segment[6 + 3 * i : 9 + 3 * i]
                    components[c[0]] = (c[1] >> 4, c[1] & 0x0F)
            elif marker == 0xDA:  # start of scan: its entropy-coded data follows
                if frame is None:
                    return "a scan before the frame header"
                count = segment[0]
                ids = [segment[1 + 2 * i] for i in range(count)]
                spectral_start = segment[1 + 2 * count]
                end = _entropy_end(data, pos)
                if spectral_start == 0:
                    for component in ids:
                        dc_bits[component] = dc_bits.get(component, 0) + 8 * (end - pos)
                pos = end
    except IndexError:
        return "a segment runs past the end of the file"
    if frame is None or not components:
        return "no frame header"
    missing = sorted(set(components) - set(dc_bits))
    if missing:
        return "the scans leave out part of the image"
    if frame in _ARITHMETIC:
        return None  # no lower bound on arithmetic-coded bits
    h_max = max(h for h, _ in components.values()) or 1
    v_max = max(v for _, v in components.values()) or 1
    bits_per_block = 1 if frame in _PROGRESSIVE else 2
    for component, (h, v) in components.items():
        # 8x8 blocks of this component at its sampling (JPEG's rounding up, ITU T.81 A.1.1)
        blocks = _ceil(_ceil(width * h, h_max), 8) * _ceil(_ceil(height * v, v_max), 8)
        if dc_bits[component] < blocks * bits_per_block:
            return (
                f"its scans hold {dc_bits[component] // 8} bytes where a {width}x{height} "
                f"image needs at least {blocks * bits_per_block // 8}"
            )
    return None


def is_binary_batch(values: Any) -> bool:
    """TF Serving's binary convention: every instance an object {"b64": "<base64>"}."""
    return (
        isinstance(values, list)
        and bool(values)
        and all(isinstance(v, dict) and set(v) == {"b64"} for v in values)
    )
