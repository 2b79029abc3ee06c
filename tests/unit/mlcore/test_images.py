"""mlcore.images: how an image becomes a model's input, for the function and for training."""

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from mlcore.images import BlankImage, InputSpec, flatten_transparency, prepare
from tests.function_support import FIXTURE_DIR, fixture_manifest, schema1_manifest
from tests.renderings import STYLES, render

DIGIT_SPEC = InputSpec(28, 28, 1, policy="digit")


@pytest.fixture(scope="module")
def digits():
    with np.load(FIXTURE_DIR / "digits.npz") as archive:
        return archive["x"][:40]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.mark.parametrize("style", STYLES)
def test_digits_as_people_send_them_come_back_as_mnist_digits(digits, style):
    """Inverted, cropped, fitted into 20x20 and centred by mass: close to the original digit
    (slight rotation and blur keep it from being exact)."""
    rng = np.random.default_rng(STYLES.index(style))
    scores = [similarity(prepare(render(d, style, rng), DIGIT_SPEC)[..., 0], d) for d in digits]
    assert np.median(scores) > 0.75, style


def test_a_digit_lands_in_the_20x20_box_centred_by_its_mass(digits):
    prepared = prepare(render(digits[0], "black_on_white", np.random.default_rng(0)), DIGIT_SPEC)
    ink = prepared[..., 0]
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21
    ys, xs = np.indices(ink.shape)
    assert (
        abs((ys * ink).sum() / ink.sum() - 13.5) <= 1
        and abs((xs * ink).sum() / ink.sum() - 13.5) <= 1
    )
    assert ink.max() == pytest.approx(255) and ink.min() == 0


def test_a_blank_drawing_is_refused():
    for colour in (0, 255):
        with pytest.raises(BlankImage):
            prepare(Image.new("L", (280, 280), colour), DIGIT_SPEC)
    with pytest.raises(BlankImage):
        prepare(Image.new("RGBA", (100, 100), (0, 0, 0, 0)), DIGIT_SPEC)


def test_light_strokes_on_a_transparent_canvas_are_kept_light():
    rgba = np.zeros((60, 60, 4), np.uint8)
    rgba[20:40, 28:32] = (255, 255, 255, 255)  # a white bar on a transparent canvas
    flat = np.asarray(flatten_transparency(Image.fromarray(rgba, "RGBA")).convert("L"))
    assert flat[30, 30] == 255 and flat[5, 5] == 0
    rgba[20:40, 28:32] = (0, 0, 0, 255)  # a black bar: onto white
    flat = np.asarray(flatten_transparency(Image.fromarray(rgba, "RGBA")).convert("L"))
    assert flat[30, 30] == 0 and flat[5, 5] == 255


def test_exif_orientation_is_honoured():
    pixels = np.zeros((20, 40), np.uint8)
    pixels[:, :10] = 255  # bright on the left
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left edge ends on top
    Image.fromarray(pixels, "L").save(buffer, "JPEG", exif=exif, quality=95)
    shown = prepare(Image.open(buffer), InputSpec(40, 20, 1))[..., 0]
    assert shown[:10].mean() > 200 and shown[-10:].mean() < 50


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("stretch", (32, 32, 3)), ("letterbox", (32, 32, 3)), ("center_crop", (32, 32, 3))],
)
def test_resize_policies(policy, expected):
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, :, 0] = 200
    out = prepare(Image.fromarray(wide, "RGB"), InputSpec(32, 32, 3, policy=policy))
    assert out.shape == expected and out.dtype == np.float32
    if policy == "letterbox":  # fitted inside: black bands above and below
        assert out[0, :, 0].max() == 0 and out[16, :, 0].min() > 150
    else:
        assert out[0, :, 0].min() > 150


def test_colour_models_get_rgb_and_grey_models_grey():
    rgb = Image.fromarray(np.full((10, 10, 3), (255, 0, 0), np.uint8), "RGB")
    assert prepare(rgb, InputSpec(10, 10, 3))[0, 0].tolist() == [255, 0, 0]
    assert prepare(rgb, InputSpec(10, 10, 1))[0, 0].tolist() == [76]  # ITU-R 601 luma


def test_a_spec_from_each_manifest_schema():
    legacy = InputSpec.from_manifest(schema1_manifest())  # grey, no channel axis, resized
    assert (legacy.instance_shape, legacy.policy) == ((28, 28), "stretch")
    manifest = fixture_manifest()
    digit = InputSpec.from_manifest(manifest)
    assert (digit.instance_shape, digit.color, digit.policy) == ((28, 28, 1), "grey", "digit")
    current = {
        **manifest,
        "input": {
            **manifest["input"],
            "shape": [-1, 32, 24, 3],
            "color": "rgb",
            "preprocessing": {"policy": "letterbox"},
        },
    }
    spec = InputSpec.from_manifest(current)
    assert (spec.instance_shape, spec.color, spec.policy) == ((32, 24, 3), "rgb", "letterbox")
    with pytest.raises(ValueError, match="unknown resize policy"):
        InputSpec.from_manifest(
            {**current, "input": {**current["input"], "preprocessing": {"policy": "warp"}}}
        )


def test_each_policy_keeps_what_it_promises_of_a_wide_image():
    """Three bands, red | green | blue, 90x30 to 30x30: stretch squeezes all three in,
    center_crop keeps the green middle only, letterbox fits all three between black bands."""
    bands = np.zeros((30, 90, 3), np.uint8)
    for band in range(3):
        bands[:, 30 * band : 30 * (band + 1), band] = 255
    image = Image.fromarray(bands, "RGB")
    stretch, crop, letterbox = (
        prepare(image, InputSpec(30, 30, 3, policy=policy)).astype(int)
        for policy in ("stretch", "center_crop", "letterbox")
    )
    assert stretch[15, 2].tolist() == [255, 0, 0] and stretch[15, 27].tolist() == [0, 0, 255]
    assert crop[15, 2].tolist() == crop[15, 27].tolist() == [0, 255, 0]
    assert letterbox[0].max() == 0 and letterbox[-1].max() == 0  # black above and below
    assert letterbox[15, 2].tolist() == [255, 0, 0] and letterbox[15, 15].tolist() == [0, 255, 0]


def test_images_are_resampled_bilinearly_as_the_models_were_trained():
    """The served input must be prepared exactly as the training job prepared its images."""
    noise = np.random.default_rng(3).integers(0, 256, (37, 53), dtype=np.uint8)
    image = Image.fromarray(noise, "L")
    bilinear = {
        "stretch": image.resize((20, 16), Image.Resampling.BILINEAR),
        "center_crop": ImageOps.fit(image, (20, 16), method=Image.Resampling.BILINEAR),
        "letterbox": ImageOps.pad(image, (20, 16), method=Image.Resampling.BILINEAR, color=0),
    }
    for policy, expected in bilinear.items():
        out = prepare(image, InputSpec(16, 20, 1, policy=policy))[..., 0]
        np.testing.assert_array_equal(out, np.asarray(expected, np.float32), err_msg=policy)
