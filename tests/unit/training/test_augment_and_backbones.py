"""AUGMENT and WEIGHTS: what each accepts and refuses, augmentation that acts only in training
and never reaches the saved model, backbones that take 0..255 pixels and see the size their
weights were made for, ImageNet weights asked of Keras by its own loading code, and the two
phases of fine-tuning (the better one kept)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.config import AUGMENT, BACKBONES, SAMPLE, SAMPLE_AUGMENT, TrainConfig, parse_augment
from training.model import (
    FINE_TUNE_RATE,
    PhaseLog,
    WeightsUnavailable,
    backbone_input_size,
    build_model,
    describe_model,
    enter_phase,
    for_training,
    phases,
    schedule,
)


@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory):
    """A weights file standing in for pretrained ones: MobileNetV3-Small as training/model.py
    builds it for starting weights (224x224, no top), saved with save_weights."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet.weights.h5"
    keras.utils.set_random_seed(7)
    backbone = keras.applications.MobileNetV3Small(
        input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg"
    )
    backbone.save_weights(path)
    return path, backbone.get_weights()


def backbone_of(model):
    (backbone,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return backbone


# -- AUGMENT ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("none", ("none", False)),
        ("light", ("light", False)),
        ("strong,flip", ("strong", True)),
        ("flip", ("", True)),
        (" Light , FLIP ", ("light", True)),
    ],
)
def test_augment_takes_a_level_and_flip(text, parsed):
    assert parse_augment(text) == parsed


@pytest.mark.parametrize("text", ["medium", "light,strong", "", ",", "light,vertical"])
def test_an_unknown_augment_names_what_is_allowed(text):
    with pytest.raises(ValueError, match="expected one of none, light, strong, optionally with"):
        TrainConfig(dataset="x", augment=text)


def test_augmentation_defaults_to_the_measured_level_and_the_sample_keeps_its_own():
    assert TrainConfig(dataset="folder").augmentation == (AUGMENT, False)
    assert TrainConfig(dataset=SAMPLE).augmentation == (SAMPLE_AUGMENT, False)
    # flips only when asked, on the default level
    assert TrainConfig(dataset="folder", augment="flip").augmentation == (AUGMENT, True)
    assert TrainConfig(dataset=SAMPLE, augment="strong").augmentation == ("strong", False)


def test_augmentation_changes_training_inputs_only_and_is_not_in_the_saved_model():
    config = TrainConfig(dataset="x", architecture="small_cnn", augment="strong,flip")
    model = build_model(config, (32, 32, 3), 3)
    trainer = for_training(model, config)
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    # in inference the trainer is the model; in training its input is transformed
    np.testing.assert_allclose(trainer(x, training=False), model(x, training=False), atol=1e-6)
    random_layers = [layer for layer in trainer.layers if type(layer).__name__.startswith("Random")]
    assert [type(layer).__name__ for layer in random_layers] == [
        "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast", "RandomFlip"
    ]  # fmt: skip
    augmented = random_layers[0](x, training=True)
    assert not np.allclose(augmented, x)
    # the model that is saved and converted has none of them, and shares the trainer's weights
    assert not any(type(layer).__name__.startswith("Random") for layer in model.layers)
    assert {id(w) for w in model.weights} <= {id(w) for w in trainer.weights}


def test_augment_none_trains_the_model_itself():
    config = TrainConfig(dataset="x", architecture="mlp", augment="none")
    model = build_model(config, (8, 8, 1), 2)
    assert for_training(model, config) is model


def test_the_manifest_records_the_augmentation():
    about = describe_model(TrainConfig(dataset="x", augment="light,flip"), (32, 32, 3))
    assert about["augmentation"]["level"] == "light" and about["augmentation"]["flip"] is True
    assert about["augmentation"]["rotate"] > 0 and "backbone" not in about


# -- WEIGHTS ---------------------------------------------------------------------------------


def test_weights_are_for_backbones_only():
    with pytest.raises(ValueError, match="only the backbones .* take starting weights"):
        TrainConfig(dataset="x", architecture="cnn", weights="imagenet")


@pytest.mark.parametrize("weights", ["imagenet22k", "weights.npz", "missing.weights.h5"])
def test_unknown_weights_name_what_is_allowed(weights):
    with pytest.raises(ValueError, match="imagenet, none, or the path of a .weights.h5 file"):
        TrainConfig(dataset="x", architecture="mobilenet", weights=weights)


def test_a_backbone_starts_from_imagenet_unless_told_otherwise(mobilenet_weights):
    path = str(mobilenet_weights[0])
    for architecture in BACKBONES:
        assert TrainConfig(dataset="x", architecture=architecture).pretrained == "imagenet"
    assert TrainConfig(dataset="x", architecture="mobilenet", weights="none").pretrained is None
    config = TrainConfig(dataset="x", architecture="mobilenet", weights=path)
    assert config.pretrained == path
    assert TrainConfig(dataset="x").pretrained is None  # cnn: no backbone


def test_a_weights_file_is_loaded_at_the_size_it_was_made_for_and_takes_0_255(mobilenet_weights):
    path, saved = mobilenet_weights
    config = TrainConfig(dataset="x", architecture="mobilenet", weights=str(path))
    model = build_model(config, (28, 28, 1), 4)  # grey digits
    assert model.input_shape == (None, 28, 28, 1)  # what is served stays the data's size
    backbone = backbone_of(model)
    assert backbone.input_shape == (None, 224, 224, 3)  # resized, grey repeated to RGB
    for loaded, expected in zip(backbone.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(loaded, expected)
    # its own preprocessing is inside: a Rescaling of 0..255 to [-1, 1] at the backbone's start
    rescaling = next(
        layer for layer in backbone.layers if isinstance(layer, keras.layers.Rescaling)
    )
    assert rescaling.scale == pytest.approx(1 / 127.5) and rescaling.offset == pytest.approx(-1)
    about = describe_model(config, (28, 28, 1))["backbone"]
    assert about["weights"]["file"] == "mobilenet.weights.h5"
    assert len(about["weights"]["sha256"]) == 64 and about["input_size"] == [224, 224]


def test_random_weights_see_the_datas_own_size():
    for architecture in BACKBONES:
        config = TrainConfig(dataset="x", architecture=architecture, weights="none")
        assert backbone_input_size(config, 64, 48) == (64, 48)
        assert backbone_input_size(config, 28, 28) == (32, 32)  # the smallest both take
        model = build_model(config, (28, 28, 1), 3)
        assert backbone_of(model).input_shape == (None, 32, 32, 3)


@pytest.mark.parametrize(
    "architecture, file_name",
    [
        ("mobilenet", "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
        ("efficientnet", "efficientnetb0_notop.h5"),
    ],
)
def test_imagenet_weights_are_asked_of_keras_and_a_failed_download_says_what_to_do(
    monkeypatch, tmp_path, architecture, file_name
):
    """keras.applications' own loading code asks keras.utils.get_file for the weights (which
    downloads once into the cache, then reads them from there); here it cannot download."""
    from keras.src.utils import file_utils

    asked = []

    def offline(fname, origin=None, **kwargs):
        asked.append((fname, origin, kwargs.get("cache_subdir")))
        # what get_file raises here, where no name resolves
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service")

    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    config = TrainConfig(dataset="x", architecture=architecture)
    with pytest.raises(WeightsUnavailable) as error:
        build_model(config, (64, 64, 3), 5)
    assert asked[0][0] == file_name and asked[0][2] == "models"
    message = str(error.value)
    assert f"could not get the ImageNet weights of {architecture}" in message
    assert str(tmp_path / "keras" / "models") in message
    assert "WEIGHTS=<file.weights.h5>" in message and "WEIGHTS=none" in message
    assert isinstance(error.value, ValueError)  # the CLI's exit 2 with this message


def test_imagenet_weights_from_keras_cache_are_loaded(monkeypatch, mobilenet_weights):
    """Once the file is in Keras' cache, get_file answers its path and the backbone loads it."""
    from keras.src.utils import file_utils

    path, saved = mobilenet_weights
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(path))
    model = build_model(TrainConfig(dataset="x", architecture="mobilenet"), (64, 64, 3), 5)
    np.testing.assert_array_equal(backbone_of(model).get_weights()[0], saved[0])


# -- the phases --------------------------------------------------------------------------------


def test_pretrained_weights_train_the_head_frozen_then_fine_tune_at_a_lower_rate(
    mobilenet_weights,
):
    config = TrainConfig(dataset="x", architecture="mobilenet", weights=str(mobilenet_weights[0]))
    head, fine_tune = phases(config)
    assert (head.name, head.learning_rate, head.backbone_trainable) == ("head", 1e-3, False)
    assert fine_tune.name == "fine_tune" and fine_tune.backbone_trainable is True
    assert fine_tune.learning_rate == pytest.approx(1e-3 * FINE_TUNE_RATE)
    assert fine_tune.learning_rate < head.learning_rate
    model = build_model(config, (32, 32, 3), 3)
    enter_phase(model, head)
    assert len(model.trainable_weights) == 2  # the new head's kernel and bias only
    enter_phase(model, fine_tune)
    assert len(model.trainable_weights) > 100
    # random weights: one phase, everything trained from the start
    (only,) = phases(TrainConfig(dataset="x", architecture="mobilenet", weights="none"))
    assert only.name == "train" and only.backbone_trainable is None
    assert [p.name for p in phases(TrainConfig(dataset="x"))] == ["train"]


class Weights:
    """A stand-in model: just weights."""

    def __init__(self, value):
        self.value = value

    def get_weights(self):
        return [self.value]

    def set_weights(self, weights):
        self.value = weights[0]


def ended(config, val_losses, best, budget=False):
    """The schedule's callbacks as they are after a phase with these validation losses."""
    callbacks = schedule(config, started=0.0, clock=lambda: 0.0)
    stopping, _, time_budget = callbacks
    stopping.best_epoch, stopping.stopped_epoch = best, (0 if budget else len(val_losses) - 1)
    time_budget.stopped = budget
    history = {"loss": val_losses, "val_loss": val_losses, "val_accuracy": [0.5] * len(val_losses)}
    return callbacks, history


def test_the_phase_with_the_better_validation_loss_is_kept(mobilenet_weights):
    config = TrainConfig(dataset="x", architecture="mobilenet", weights=str(mobilenet_weights[0]))
    head, fine_tune = phases(config)
    model, log = Weights("head"), PhaseLog(config)
    assert log.add(head, *ended(config, [0.9, 0.5, 0.6], best=1), model)
    model.value = "fine_tune"
    assert log.add(fine_tune, *ended(config, [0.7, 0.65], best=1), model)
    stopped = log.finish(model)
    assert model.value == "head"  # fine-tuning never beat the head's best: its weights back
    assert stopped["kept"] == "head" and stopped["best_epoch"] == 2 and stopped["epochs"] == 5
    assert [(p["name"], p["epochs"], p["best_epoch"]) for p in stopped["phases"]] == [
        ("head", 3, 2),
        ("fine_tune", 2, 5),
    ]
    assert log.history["val_loss"] == [0.9, 0.5, 0.6, 0.7, 0.65]

    model, log = Weights("head"), PhaseLog(config)
    log.add(head, *ended(config, [0.9, 0.5], best=1), model)
    model.value = "fine_tune"
    log.add(fine_tune, *ended(config, [0.4, 0.3], best=1), model)
    stopped = log.finish(model)
    assert model.value == "fine_tune" and stopped["kept"] == "fine_tune"
    assert stopped["best_epoch"] == 4


def test_a_budget_spent_on_the_head_leaves_no_fine_tuning_and_says_so(mobilenet_weights):
    from training.evaluate import describe_stop

    config = TrainConfig(dataset="x", architecture="mobilenet", weights=str(mobilenet_weights[0]))
    head, _ = phases(config)
    log = PhaseLog(config)
    assert not log.add(head, *ended(config, [0.9, 0.8], best=1, budget=True), Weights("head"))
    stopped = log.finish(Weights("head"))
    assert stopped["reason"] == "budget"
    assert "(2 with the backbone frozen, no fine-tuning: the budget was spent)" in describe_stop(
        stopped
    )


def test_one_phase_records_no_phases():
    config = TrainConfig(dataset="x", architecture="cnn")
    (train,) = phases(config)
    log = PhaseLog(config)
    log.add(train, *ended(config, [0.9, 0.5, 0.6], best=1), Weights("w"))
    stopped = log.finish(Weights("w"))
    assert "phases" not in stopped and stopped["best_epoch"] == 2 and stopped["epochs"] == 3
