"""The synthetic image folders: reproducible from (kind, seed, index), readable as DATASET, and
different for another seed (a held-out set)."""

import hashlib

import numpy as np
import pytest

from training.data import load_dataset
from training.synthetic import KINDS, image, make_folder


def digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.png"))
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_a_dataset_of_its_classes_size_and_colour(kind, tmp_path):
    dataset = load_dataset(str(make_folder(kind, tmp_path / kind, per_class=3)))
    spec = KINDS[kind]
    assert dataset.class_names == sorted(spec.classes)
    assert dataset.x.shape == (3 * len(spec.classes), spec.size, spec.size, 3)
    assert np.bincount(dataset.y).tolist() == [3] * len(spec.classes)


def test_the_same_seed_gives_the_same_bytes_and_a_prefix_of_a_larger_folder(tmp_path):
    small = make_folder("letters", tmp_path / "a", per_class=2, seed=5)
    again = make_folder("letters", tmp_path / "b", per_class=2, seed=5)
    larger = make_folder("letters", tmp_path / "c", per_class=3, seed=5)
    assert digest(small) == digest(again)
    assert digest(small).items() <= digest(larger).items()


def test_another_seed_gives_other_images_of_the_same_kind():
    for kind in ("letters", "textures"):
        first = np.asarray(image(kind, 0, 0, seed=0))
        other = np.asarray(image(kind, 0, 0, seed=1))
        assert first.shape == other.shape and not np.array_equal(first, other)


def test_an_unknown_kind_names_the_allowed_ones(tmp_path):
    with pytest.raises(ValueError, match="allowed: letters, textures, shapes, dials, noise"):
        make_folder("faces", tmp_path)


def test_a_dials_class_is_where_its_hand_points():
    """The hand (the pixels most unlike the face) lies on the class's side of the centre."""
    from training.synthetic import DIAL_HOURS

    for label, hour in enumerate(DIAL_HOURS):
        angle = np.deg2rad(label * 60)  # clockwise from 12
        expected = np.array([-np.cos(angle), np.sin(angle)])  # (row, column) direction
        for index in range(5):
            pixels = np.asarray(image("dials", label, index), np.float32)
            centre = pixels[20:28, 20:28].reshape(-1, 3).mean(axis=0)  # hub: the hand's colour
            rows, cols = np.nonzero(np.linalg.norm(pixels - centre, axis=2) < 40)
            direction = np.array([rows.mean() - 24, cols.mean() - 24])
            assert direction @ expected > 0, (hour, index)
