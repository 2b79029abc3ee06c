"""Datasets and the deterministic, stratified train/validation/test split.

Pure numpy: no TensorFlow import here (Keras is imported only to download the full MNIST).
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_PATH = Path(__file__).parent / "data" / "mnist-sample.npz"
SAMPLE_SHA256 = "f814240cf7e0d3cbaacc1a898905819a40ab46fb317a600d2a4b91a5c184c810"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
NUM_CLASSES = 10


class DatasetError(Exception):
    """A dataset that is missing or not what was expected; the message names the path."""


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    sha256: str
    x: np.ndarray  # uint8 (N, H, W), grey levels 0..255
    y: np.ndarray  # uint8 (N,), class ids
    x_test: np.ndarray | None = None  # the dataset's own test split, when it has one
    y_test: np.ndarray | None = None


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def file_sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def check_images(x: np.ndarray, y: np.ndarray, where: str) -> None:
    expected = "uint8 images (N, H, W) with N uint8 labels in 0..9"
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise DatasetError(f"{where}: expected {expected}, got x{x.shape} and y{y.shape}")
    if x.dtype != np.uint8 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{where}: expected {expected}, got x {x.dtype} and y {y.dtype}")
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise DatasetError(f"{where}: labels must be in 0..9, got {y.min()}..{y.max()}")


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (expected an .npz with arrays {', '.join(keys)})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path}: missing arrays {', '.join(missing)} "
                    f"(expected {', '.join(keys)}, found {', '.join(archive.files) or 'none'})"
                )
            return {k: archive[k] for k in keys}
    except DatasetError:
        raise
    except Exception as exc:  # zipfile/pickle/format errors all mean "not a readable .npz"
        raise DatasetError(f"{path}: not a readable .npz archive ({exc})") from exc


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (the format MNIST is distributed in), optionally gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


def find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{folder}: missing IDX file {stem} (or {stem}.gz)")


def download_s3(uri: str, folder: Path) -> Path:
    """s3://bucket/key.npz -> a local file, through the standard AWS configuration."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key.endswith(".npz"):
        raise DatasetError(f"{uri}: expected s3://BUCKET/KEY.npz")
    target = folder / Path(key).name
    try:
        boto3.client("s3").download_file(bucket, key, str(target))
    except (BotoCoreError, ClientError) as exc:
        raise DatasetError(f"{uri}: cannot download ({exc})") from exc
    return target


def load_mnist_sample(path: Path | None = None) -> Dataset:
    path = Path(path) if path else SAMPLE_PATH
    sha256 = file_sha256(path) if path.is_file() else ""
    if path == SAMPLE_PATH and sha256 != SAMPLE_SHA256:
        raise DatasetError(
            f"{path}: sha256 {sha256[:12]}... is not the bundled sample's {SAMPLE_SHA256[:12]}... "
            "(training/data/README.md); restore it with git checkout"
        )
    arrays = read_npz(path, ("x", "y"))
    check_images(arrays["x"], arrays["y"], str(path))
    return Dataset("mnist-sample", str(path), sha256, arrays["x"], arrays["y"])


def load_mnist(data_path: str | None = None) -> Dataset:
    """The full MNIST: Keras' download and cache, a local mnist.npz, IDX files, or s3://...npz."""
    if data_path and data_path.startswith("s3://"):
        with tempfile.TemporaryDirectory() as tmp:
            return load_mnist(str(download_s3(data_path, Path(tmp))))
    if data_path is None:
        import keras  # only here: the download needs it, nothing else in this module does

        try:
            path = Path(
                keras.utils.get_file(
                    "mnist.npz",
                    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
                    file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                )
            )
        except Exception as exc:
            raise DatasetError(
                "cannot download the full MNIST through Keras (offline?): give a local "
                "mnist.npz, a folder of IDX files or an s3:// URI with --data-path, or use "
                f"--dataset mnist-sample ({exc})"
            ) from exc
        return load_mnist(str(path))
    path = Path(data_path)
    if path.is_dir():
        files = {k: find_idx(path, stem) for k, stem in IDX_FILES.items()}
        arrays = {k: read_idx(f) for k, f in files.items()}
        sha = file_sha256(*(files[k] for k in sorted(files)))
    else:
        arrays = read_npz(path, ("x_train", "y_train", "x_test", "y_test"))
        sha = file_sha256(path)
    check_images(arrays["x_train"], arrays["y_train"], f"{path} (train)")
    check_images(arrays["x_test"], arrays["y_test"], f"{path} (test)")
    return Dataset(
        "mnist",
        str(path),
        sha,
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
    )


def load_dataset(name: str, data_path: str | None = None) -> Dataset:
    if name == "mnist-sample":
        return load_mnist_sample(Path(data_path) if data_path else None)
    if name == "mnist":
        return load_mnist(data_path)
    raise ValueError(f"unknown dataset {name!r}; allowed: mnist-sample, mnist")


def stratified_split(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Indices of len(fractions)+1 parts, each holding every class in the same proportion.

    Deterministic for a given seed; the last part takes what the fractions leave.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        bounds = np.cumsum([round(f * len(members)) for f in fractions])
        for part, chunk in zip(parts, np.split(members, bounds), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def make_splits(
    dataset: Dataset,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    limit: int | None = None,
) -> Splits:
    """Train/validation/test. A dataset with its own test split keeps it as the test split."""
    if dataset.x_test is not None:
        val_idx, train_idx = stratified_split(dataset.y, (validation_fraction,), seed)
        x_test, y_test = dataset.x_test, dataset.y_test
    else:
        test_idx, val_idx, train_idx = stratified_split(
            dataset.y, (test_fraction, validation_fraction), seed
        )
        x_test, y_test = dataset.x[test_idx], dataset.y[test_idx]
    if limit is not None:
        train_idx = np.random.default_rng(seed).permutation(train_idx)[:limit]
    return Splits(
        dataset.x[train_idx],
        dataset.y[train_idx],
        dataset.x[val_idx],
        dataset.y[val_idx],
        x_test,
        y_test,
    )


def split_record(validation_fraction: float, test_fraction: float, seed: int, limit: int | None):
    """How the splits were made, as the manifest records it (what held_out_split reads)."""
    return {
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "limit": limit,
    }


def held_out_split(manifest: dict, data_path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The test split a published model was evaluated on, made again from its manifest: the same
    dataset (checked by sha256), fractions and seed, so none of it was seen in training."""
    recorded = manifest.get("dataset", {})
    split = recorded.get("split")
    if not split:
        raise DatasetError(f"manifest of version {manifest.get('version')} records no split")
    dataset = load_dataset(recorded["name"], data_path)
    if dataset.sha256 != recorded.get("sha256"):
        raise DatasetError(
            f"{dataset.source}: sha256 {dataset.sha256[:12]}... is not the dataset this model "
            f"was trained on ({str(recorded.get('sha256'))[:12]}...)"
        )
    splits = make_splits(
        dataset, split["validation_fraction"], split["test_fraction"], split["seed"], split["limit"]
    )
    return splits.x_test, splits.y_test
