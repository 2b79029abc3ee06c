"""Each quantization mode on a tiny model, checked through LiteRT (the serving runtime)."""

import numpy as np
import pytest

from training import evaluate
from training.config import ARCHITECTURES, BACKBONES, TrainConfig
from training.convert import convert, representative_dataset
from training.model import build_model

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tiny():
    tf.keras.utils.set_random_seed(0)  # unseeded weights made the int8 tolerance flaky
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 8, 8, 1)).astype(np.uint8)
    model = build_model(TrainConfig(architecture="mlp"), (8, 8, 1), 10)
    return model, x


@pytest.mark.parametrize(
    "mode,io_dtype",
    [("int8", "int8"), ("float16", "float32"), ("dynamic", "float32"), ("none", "float32")],
)
def test_mode_converts_runs_and_agrees_with_keras(tiny, mode, io_dtype):
    model, x = tiny
    content = convert(model, mode, representative_dataset(x, size=8, seed=0))
    input_spec, output_spec = evaluate.tflite_specs(content)
    assert input_spec["dtype"] == output_spec["dtype"] == io_dtype
    assert input_spec["shape"] == [-1, 8, 8, 1]  # batch dimension stays resizable
    probabilities = evaluate.tflite_probabilities(content, x[:16])
    assert probabilities.shape == (16, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.05)
    expected = model.predict(x[:16].astype(np.float32), verbose=0)
    np.testing.assert_allclose(probabilities, expected, atol=0.03 if mode == "int8" else 0.01)


def test_int8_is_full_integer_and_a_quarter_of_float32(tiny):
    model, x = tiny
    int8 = convert(model, "int8", representative_dataset(x, size=8, seed=0))
    float32 = convert(model, "none")
    input_spec, _ = evaluate.tflite_specs(int8)
    assert input_spec["quantization"]["scale"] > 0
    assert len(int8) < 0.5 * len(float32)


def test_int8_without_representative_data_is_refused(tiny):
    with pytest.raises(ValueError, match="representative data"):
        convert(tiny[0], "int8")


def test_unknown_mode_is_refused(tiny):
    with pytest.raises(ValueError, match="allowed: int8, float16, dynamic, none"):
        convert(tiny[0], "int4")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_every_architecture_builds_for_grey_and_colour(architecture, shape):
    weights = {"weights": "none"} if architecture in BACKBONES else {}  # imagenet: a download
    model = build_model(TrainConfig(architecture=architecture, **weights), shape, 4)
    assert model.input_shape == (None, *shape) and model.output_shape == (None, 4)


def test_the_architecture_registry_is_the_configs_list():
    from training.model import ARCHITECTURES as BUILT

    assert tuple(BUILT) == ARCHITECTURES
