"""training.data: every DATASET form, the splits, and a clear error for every unreadable dataset."""

import gzip

import numpy as np
import pytest
from PIL import Image

from training import data
from training.data import (
    SAMPLE_SHA256,
    DatasetError,
    held_out_split,
    load_dataset,
    make_splits,
    read_idx,
    split_record,
    stratified_split,
)
from training.synthetic import CLASSES, make_shapes


def labels(per_class=50, classes=10):
    return np.repeat(np.arange(classes, dtype=np.uint8), per_class)


def test_split_is_deterministic_disjoint_complete_and_stratified():
    y = labels()
    test, val, train = stratified_split(y, (0.1, 0.2), seed=7)
    again = stratified_split(y, (0.1, 0.2), seed=7)
    assert all(np.array_equal(a, b) for a, b in zip((test, val, train), again, strict=True))
    assert sorted(np.concatenate([test, val, train]).tolist()) == list(range(len(y)))
    for part, per_class in ((test, 5), (val, 10), (train, 35)):
        assert np.bincount(y[part], minlength=10).tolist() == [per_class] * 10


def test_another_seed_gives_another_split():
    y = labels()
    assert not np.array_equal(stratified_split(y, (0.1,), 1)[0], stratified_split(y, (0.1,), 2)[0])


def test_sample_dataset_loads_with_its_checksum_and_splits_80_10_10():
    dataset = load_dataset("mnist-sample")
    assert dataset.sha256 == SAMPLE_SHA256
    assert dataset.x.shape == (5000, 28, 28, 1) and dataset.x.dtype == np.uint8
    assert dataset.class_names == [str(i) for i in range(10)] and dataset.policy == "digit"
    splits = make_splits(dataset, 0.1, 0.1, seed=42)
    assert splits.sizes() == {"train": 4000, "validation": 500, "test": 500}
    assert np.bincount(splits.y_test).tolist() == [50] * 10


def test_a_changed_bundled_sample_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "mnist-sample.npz"
    original = data.SAMPLE_PATH.read_bytes()
    copy.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    monkeypatch.setattr(data, "SAMPLE_PATH", copy)
    with pytest.raises(DatasetError, match="is not the bundled sample's"):
        load_dataset("mnist-sample")


# -- .npz and IDX ----------------------------------------------------------------------------------


def test_an_npz_of_colour_images_with_class_names(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    y = np.arange(30) % 3
    np.savez(tmp_path / "set.npz", x=x, y=y, class_names=np.array(["cat", "dog", "eel"]))
    dataset = load_dataset(str(tmp_path / "set.npz"))
    assert dataset.x.shape == (30, 32, 32, 3) and dataset.class_names == ["cat", "dog", "eel"]
    assert dataset.policy == "stretch"
    small = load_dataset(str(tmp_path / "set.npz"), image_size=(16, 16), color="grey")
    assert small.x.shape == (30, 16, 16, 1)


def test_a_fashion_like_npz_is_any_grey_dataset(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "fashion.npz", x=x, y=np.arange(40) % 10)
    dataset = load_dataset(str(tmp_path / "fashion.npz"))
    assert dataset.x.shape == (40, 28, 28, 1) and dataset.class_names == [str(i) for i in range(10)]


def test_dataset_with_its_own_test_split_keeps_it(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x, y_train=labels(10), x_test=x_test, y_test=labels(2))
    splits = make_splits(load_dataset(str(path)), 0.1, 0.1, seed=0, limit=50)
    assert np.array_equal(splits.x_test[..., 0], x_test)
    assert splits.sizes() == {"train": 50, "validation": 10, "test": 20}


def test_idx_files_load_gzipped_or_not(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    (tmp_path / "a").write_bytes(header + images.tobytes())
    with gzip.open(tmp_path / "b.gz", "wb") as f:
        f.write(header + images.tobytes())
    assert np.array_equal(read_idx(tmp_path / "a"), images)
    assert np.array_equal(read_idx(tmp_path / "b.gz"), images)


def test_a_folder_of_idx_files_is_mnist_with_its_test_split(tmp_path):
    def idx(array):
        return (
            bytes([0, 0, 8, array.ndim])
            + b"".join(d.to_bytes(4, "big") for d in array.shape)
            + array.tobytes()
        )

    rng = np.random.default_rng(1)
    for stem, array in {
        "train-images-idx3-ubyte": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": labels(4),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": labels(1),
    }.items():
        (tmp_path / stem).write_bytes(idx(array))
    dataset = load_dataset(str(tmp_path))
    assert dataset.x.shape == (40, 28, 28, 1) and len(dataset.own["test"][1]) == 10


# -- image folders ---------------------------------------------------------------------------------


def test_an_image_folder_gives_sorted_class_names_colour_and_the_common_size(tmp_path):
    make_shapes(tmp_path / "shapes", per_class=6)
    Image.new("RGB", (40, 30)).save(tmp_path / "shapes" / "circle" / "odd-size.png")
    dataset = load_dataset(str(tmp_path / "shapes"))
    assert dataset.class_names == sorted(CLASSES)
    assert dataset.x.shape == (19, 32, 32, 3)  # the odd one resized to the common size
    assert np.bincount(dataset.y).tolist() == [7, 6, 6]
    grey = load_dataset(str(tmp_path / "shapes"), image_size=(24, 20), color="grey")
    assert grey.x.shape == (19, 24, 20, 1)


def test_fixed_train_val_test_folders_are_kept(tmp_path):
    for part, count in (("train", 8), ("val", 2), ("test", 3)):
        make_shapes(tmp_path / "set" / part, per_class=count, seed=len(part))
    dataset = load_dataset(str(tmp_path / "set"))
    splits = make_splits(dataset, 0.1, 0.1, seed=0)
    assert splits.sizes() == {"train": 24, "validation": 6, "test": 9}


def test_too_few_examples_to_split_is_a_clear_error(tmp_path):
    make_shapes(tmp_path / "tiny", per_class=2)
    with pytest.raises(DatasetError, match="too few"):
        make_splits(load_dataset(str(tmp_path / "tiny")), 0.1, 0.1, seed=0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda root: [p.unlink() for p in (root / "square").iterdir()] and None,
            r"square: an empty class",
        ),
        (
            lambda root: (root / "triangle" / "broken.png").write_bytes(b"\x89PNG not really"),
            r"1 unreadable image\(s\): .*broken.png",
        ),
        (
            lambda root: Image.new("L", (32, 32)).save(root / "circle" / "grey.png"),
            "mix grey and colour.*COLOR=rgb or COLOR=grey",
        ),
    ],
)
def test_a_bad_image_folder_names_the_problem(tmp_path, mutate, message):
    root = make_shapes(tmp_path / "shapes", per_class=3)
    mutate(root)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(root))


def test_mixed_channels_are_fine_once_a_colour_is_chosen(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=3)
    Image.new("L", (32, 32)).save(root / "circle" / "grey.png")
    assert load_dataset(str(root), color="rgb").x.shape[-1] == 3


def test_a_folder_with_one_class_is_refused(tmp_path):
    make_shapes(tmp_path / "one", per_class=3, classes=("circle",))
    with pytest.raises(DatasetError, match="found 1 class folder.*at least 2"):
        load_dataset(str(tmp_path / "one"))


def test_a_test_folder_with_an_unknown_class_is_refused(tmp_path):
    make_shapes(tmp_path / "set" / "train", per_class=3)
    make_shapes(tmp_path / "set" / "test", per_class=1, classes=("circle", "hexagon"))
    with pytest.raises(DatasetError, match="hexagon are not in the training classes"):
        load_dataset(str(tmp_path / "set"))


# -- errors ----------------------------------------------------------------------------------------


def test_a_missing_dataset_names_what_is_accepted(tmp_path):
    with pytest.raises(DatasetError, match=r"nothing: no such file or folder; DATASET is one of"):
        load_dataset(str(tmp_path / "nothing"))


def test_malformed_npz_files_are_clear_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="junk.npz: not a readable .npz"):
        load_dataset(str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "wrong.npz", x=np.zeros((3, 28, 28), np.float32), y=np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match="wrong.npz \\(x\\): expected uint8 images"):
        load_dataset(str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "keys.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="missing arrays x, y"):
        load_dataset(str(tmp_path / "keys.npz"))
    np.savez(
        tmp_path / "labels.npz",
        x=np.zeros((3, 8, 8), np.uint8),
        y=np.array([0, 1, 5]),
        class_names=np.array(["a", "b"]),
    )
    with pytest.raises(DatasetError, match="labels 0..5 are outside the class list \\(0..1: a, b"):
        load_dataset(str(tmp_path / "labels.npz"))


def test_unknown_options_name_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: grey, rgb"):
        load_dataset("mnist-sample", color="blue")
    with pytest.raises(ValueError, match="allowed: digit, stretch"):
        load_dataset("mnist-sample", policy="zoom")


# -- the run's own test split ------------------------------------------------------------------


def manifest_of(dataset, **split) -> dict:
    record = split_record(
        **{"validation_fraction": 0.1, "test_fraction": 0.1, "seed": 42, "limit": None, **split}
    )
    return {
        "version": 1,
        "input": {"shape": [-1, *dataset.x.shape[1:]], **dataset.input_spec.manifest_fields()},
        "dataset": {"name": dataset.name, "sha256": dataset.sha256, "split": record},
    }


def test_held_out_split_is_the_runs_own_test_split():
    dataset = load_dataset("mnist-sample")
    manifest = manifest_of(dataset, test_fraction=0.2, seed=7)
    x, y = held_out_split(manifest)
    expected = make_splits(dataset, 0.1, 0.2, seed=7)
    assert np.array_equal(x, expected.x_test) and np.array_equal(y, expected.y_test)
    assert len(y) == 1000  # the run's fraction, not the default 0.1


def test_held_out_split_of_an_image_folder(tmp_path):
    make_shapes(tmp_path / "shapes", per_class=10)
    dataset = load_dataset(str(tmp_path / "shapes"), image_size=(20, 20))
    x, y = held_out_split(manifest_of(dataset))
    assert x.shape == (3, 20, 20, 3) and sorted(y.tolist()) == [0, 1, 2]


def test_held_out_split_refuses_another_dataset_or_no_record():
    dataset = load_dataset("mnist-sample")
    manifest = manifest_of(dataset)
    manifest["dataset"]["sha256"] = "0" * 64
    with pytest.raises(DatasetError, match="not the dataset this model was trained on"):
        held_out_split(manifest)
    with pytest.raises(DatasetError, match="records no split"):
        held_out_split({"version": 3, "dataset": {"name": "mnist-sample"}})


def test_a_separate_test_set_matches_classes_by_name_and_is_held_out_again(tmp_path):
    rng = np.random.default_rng(3)
    train_file, test_file = tmp_path / "train.npz", tmp_path / "test.npz"
    x = rng.integers(0, 256, (60, 8, 8), dtype=np.uint8)
    np.savez(train_file, x=x, y=np.arange(60) % 3, class_names=np.array(["a", "b", "c"]))
    # the test set lacks class "b" and lists its classes in another order, at another size
    test_x = rng.integers(0, 256, (4, 16, 16), dtype=np.uint8)
    np.savez(test_file, x=test_x, y=np.array([0, 1, 0, 1]), class_names=np.array(["c", "a"]))
    dataset = data.with_test_set(load_dataset(str(train_file)), str(test_file))
    splits = make_splits(dataset, 0.1, 0.1, seed=1)
    assert splits.x_test.shape == (4, 8, 8, 1)  # prepared to the training input
    assert splits.y_test.tolist() == [2, 0, 2, 0]  # "c" is class 2 and "a" class 0 in training
    assert len(splits.y_train) + len(splits.y_val) == 60  # none held out from the training set
    assert dataset.test_set == {
        "name": str(test_file),
        "sha256": data.file_sha256(test_file),
        "size": 4,
    }

    manifest = manifest_of(dataset)
    manifest["dataset"]["test_set"] = dataset.test_set
    x_again, y_again = held_out_split(manifest)
    assert np.array_equal(x_again, splits.x_test) and np.array_equal(y_again, splits.y_test)
    np.savez(test_file, x=test_x[:2], y=np.array([0, 1]), class_names=np.array(["c", "a"]))
    with pytest.raises(DatasetError, match="not the test set this model was evaluated on"):
        held_out_split(manifest)

    np.savez(test_file, x=test_x, y=np.array([0, 1, 0, 1]), class_names=np.array(["c", "z"]))
    with pytest.raises(DatasetError, match="classes z are not among the 3 training classes"):
        data.with_test_set(load_dataset(str(train_file)), str(test_file))
