import gzip

import numpy as np
import pytest

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
    assert dataset.x.shape == (5000, 28, 28) and dataset.x.dtype == np.uint8
    splits = make_splits(dataset, 0.1, 0.1, seed=42)
    assert splits.sizes() == {"train": 4000, "validation": 500, "test": 500}
    assert np.bincount(splits.y_test).tolist() == [50] * 10


def test_dataset_with_its_own_test_split_keeps_it(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x, y_train=labels(10), x_test=x_test, y_test=labels(2))
    splits = make_splits(load_dataset("mnist", str(path)), 0.1, 0.1, seed=0, limit=50)
    assert np.array_equal(splits.x_test, x_test)
    assert splits.sizes() == {"train": 50, "validation": 10, "test": 20}


def test_idx_files_load_gzipped_or_not(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    (tmp_path / "a").write_bytes(header + images.tobytes())
    with gzip.open(tmp_path / "b.gz", "wb") as f:
        f.write(header + images.tobytes())
    assert np.array_equal(read_idx(tmp_path / "a"), images)
    assert np.array_equal(read_idx(tmp_path / "b.gz"), images)


def test_missing_dataset_names_the_path_and_what_was_expected(tmp_path):
    with pytest.raises(DatasetError, match=r"nothing\.npz: no such file.*x, y"):
        load_dataset("mnist-sample", str(tmp_path / "nothing.npz"))


def test_malformed_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="junk.npz: not a readable .npz"):
        load_dataset("mnist-sample", str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "wrong.npz", x=np.zeros((3, 28, 28), np.float32), y=np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match="wrong.npz: expected uint8 images"):
        load_dataset("mnist-sample", str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "keys.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="missing arrays x, y"):
        load_dataset("mnist-sample", str(tmp_path / "keys.npz"))
    with pytest.raises(DatasetError, match="missing IDX file train-images-idx3-ubyte"):
        load_dataset("mnist", str(tmp_path))


def test_unknown_dataset_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: mnist-sample, mnist"):
        load_dataset("cifar")


def test_a_changed_bundled_sample_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "mnist-sample.npz"
    original = data.SAMPLE_PATH.read_bytes()
    copy.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    monkeypatch.setattr(data, "SAMPLE_PATH", copy)
    with pytest.raises(DatasetError, match="is not the bundled sample's"):
        load_dataset("mnist-sample")


def manifest_of(dataset, **split) -> dict:
    record = split_record(
        **{"validation_fraction": 0.1, "test_fraction": 0.1, "seed": 42, "limit": None, **split}
    )
    return {
        "version": 1,
        "dataset": {"name": dataset.name, "sha256": dataset.sha256, "split": record},
    }


def test_held_out_split_is_the_runs_own_test_split():
    dataset = load_dataset("mnist-sample")
    manifest = manifest_of(dataset, test_fraction=0.2, seed=7)
    x, y = held_out_split(manifest)
    expected = make_splits(dataset, 0.1, 0.2, seed=7)
    assert np.array_equal(x, expected.x_test) and np.array_equal(y, expected.y_test)
    assert len(y) == 1000  # the run's fraction, not the default 0.1


def test_held_out_split_refuses_another_dataset_or_no_record():
    dataset = load_dataset("mnist-sample")
    manifest = manifest_of(dataset)
    manifest["dataset"]["sha256"] = "0" * 64
    with pytest.raises(DatasetError, match="not the dataset this model was trained on"):
        held_out_split(manifest)
    with pytest.raises(DatasetError, match="records no split"):
        held_out_split({"version": 3, "dataset": {"name": "mnist-sample"}})
