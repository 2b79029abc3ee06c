"""Datasets (DATASET: a built-in name, a local path or an s3:// URI) and the deterministic,
stratified train/validation/test split.

- ``mnist-sample`` (bundled, offline) and ``mnist`` (the full set through Keras' download
  and cache): handwritten digits, prepared at serving time with the ``digit`` policy.
- a folder with one subfolder per class of PNG/JPEG/BMP/GIF/WebP images, as Keras'
  ``image_dataset_from_directory`` and torchvision's ``ImageFolder`` read it: class names are
  the folder names, sorted; optionally ``train/``, ``val/`` and ``test/`` at the top for fixed
  splits. Images of any size are prepared to the model's size (``image_size``, default the most
  common size found) with the resize policy the manifest records (mlcore.images), in ``color``
  (default: what the images are).
- a folder of MNIST's IDX files, or an ``.npz`` with ``x`` (N, H, W) or (N, H, W, C) uint8 and
  ``y`` integer labels, optional ``class_names`` (or ``x_train/y_train/x_test/y_test``, and
  optionally ``x_val/y_val``).
- ``s3://BUCKET/KEY.npz`` or ``s3://BUCKET/PREFIX/`` (an image folder), read with the standard
  AWS configuration.

Every image array is uint8 (N, H, W, C) with C = 1 (grey) or 3 (rgb). numpy and Pillow only:
no TensorFlow import here (Keras is imported only to download the full MNIST).
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlcore.images import COLORS, POLICIES, InputSpec, prepare

SAMPLE_PATH = Path(__file__).parent / "data" / "mnist-sample.npz"
SAMPLE_SHA256 = "f814240cf7e0d3cbaacc1a898905819a40ab46fb317a600d2a4b91a5c184c810"
BUILTIN = ("mnist-sample", "mnist")
DIGITS = [str(i) for i in range(10)]
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}


class DatasetError(Exception):
    """A dataset that cannot be read: the message names the path, what was found and what is
    expected."""


@dataclass(frozen=True)
class Dataset:
    name: str  # DATASET as given: a built-in name, a path or a URI
    sha256: str
    x: np.ndarray  # uint8 (N, H, W, C)
    y: np.ndarray  # class ids (N,), indices into class_names
    class_names: list[str]
    policy: str  # how an image becomes an input (mlcore.images): recorded in the manifest
    own: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # the dataset's own "validation" and/or "test" split, when it has them
    test_set: dict | None = None  # {"name", "sha256", "size"} of a separate test set, if any

    @property
    def input_spec(self) -> InputSpec:
        height, width, channels = self.x.shape[1:]
        return InputSpec(height, width, channels, policy=self.policy)


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


def file_sha256(*paths: Path, names: bool = False) -> str:
    """sha256 over the files' bytes (and their names, for a folder's files)."""
    digest = hashlib.sha256()
    for path in paths:
        if names:
            digest.update(str(path).encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# -- arrays ------------------------------------------------------------------------------------


def as_images(x: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) uint8 -> (N, H, W, C) with C = 1 or 3."""
    expected = "uint8 images (N, H, W) or (N, H, W, C) with C = 1 or 3"
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
        raise DatasetError(f"{where}: expected {expected}, got {x.dtype} {x.shape}")
    return x[..., None] if x.ndim == 3 else x


def check_labels(y: np.ndarray, count: int, class_names: list[str], where: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != count or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{where}: expected {count} integer labels, got {y.dtype} {y.shape}")
    if count == 0:
        raise DatasetError(f"{where}: no images")
    if y.min() < 0 or y.max() >= len(class_names):
        raise DatasetError(
            f"{where}: labels {int(y.min())}..{int(y.max())} are outside the class list "
            f"(0..{len(class_names) - 1}: {', '.join(class_names[:12])}"
            f"{', ...' if len(class_names) > 12 else ''})"
        )
    return y.astype(np.int64)


def conform(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Images of another size or colour than the spec's, prepared as the spec says."""
    if x.shape[1:] == (spec.height, spec.width, spec.channels):
        return x
    from PIL import Image

    return np.stack(
        [
            prepare(Image.fromarray(image.squeeze(-1) if image.shape[2] == 1 else image), spec)
            for image in x
        ]
    ).astype(np.uint8)


def from_arrays(
    name: str,
    sha256: str,
    arrays: dict[str, np.ndarray],
    class_names: list[str] | None,
    policy: str,
    image_size: tuple[int, int] | None,
    color: str | None,
    where: str,
) -> Dataset:
    """A Dataset from x/y (or x_train/y_train + x_test/y_test [+ x_val/y_val]) arrays."""
    parts = {"": "x"} if "x" in arrays else {"train": "x_train", "test": "x_test", "val": "x_val"}
    parts = {part: key for part, key in parts.items() if key in arrays}
    for key in parts.values():
        if "y" + key[1:] not in arrays:
            raise DatasetError(f"{where}: {key} has no labels ({'y' + key[1:]})")
    images = {part: as_images(arrays[key], f"{where} ({key})") for part, key in parts.items()}
    if class_names is None:  # no names given: the class ids themselves
        largest = max(int(arrays["y" + key[1:]].max(initial=0)) for key in parts.values())
        class_names = [str(i) for i in range(largest + 1)]
    first = next(iter(images.values()))
    height, width = image_size or first.shape[1:3]
    channels = COLORS[color] if color else first.shape[3]
    spec = InputSpec(height, width, channels, policy=policy)
    labelled = {}
    for part, x in images.items():
        key = parts[part]
        y = check_labels(arrays["y" + key[1:]], len(x), class_names, f"{where} ({key})")
        labelled[part] = (conform(x, spec), y)
    x, y = labelled.pop("train", None) or labelled.pop("")
    own = {SPLIT_FOLDERS[part]: value for part, value in labelled.items()}
    return Dataset(name, sha256, x, y, list(class_names), policy, own)


def read_npz(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every array of an .npz (pickles refused); with `keys`, those must be there."""
    if not path.is_file():
        raise DatasetError(
            f"{path}: no such file (expected an .npz with arrays {', '.join(keys or ('x', 'y'))})"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:  # zipfile/pickle/format errors all mean "not a readable .npz"
        raise DatasetError(f"{path}: not a readable .npz archive ({exc})") from exc
    missing = [k for k in (keys or ()) if k not in arrays]
    if keys is None and "x" not in arrays and "x_train" not in arrays:
        missing = ["x, y (or x_train, y_train, x_test, y_test)"]
    if missing:
        raise DatasetError(
            f"{path}: missing arrays {', '.join(missing)} (found {', '.join(arrays) or 'none'})"
        )
    return arrays


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


def find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


# -- image folders -------------------------------------------------------------------------------


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def color_of(image) -> str:
    """'grey' for images with one channel (or a palette of greys), else 'rgb'."""
    if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return "grey"
    if image.mode in ("P", "PA"):
        rgb = np.asarray(image.convert("RGB"))
        return "grey" if (rgb == rgb[..., :1]).all() else "rgb"
    return "rgb"


def read_image_folder(
    folder: Path,
    name: str,
    image_size: tuple[int, int] | None,
    color: str | None,
    policy: str,
) -> Dataset:
    """One subfolder per class (or train/, val/, test/ each holding them)."""
    from PIL import Image, UnidentifiedImageError

    top = {p.name for p in _class_folders(folder)}
    parts = (
        {part: folder / part for part in SPLIT_FOLDERS if part in top}
        if "train" in top and top <= set(SPLIT_FOLDERS)
        else {"": folder}
    )
    class_names = [p.name for p in _class_folders(parts.get("train", folder))]
    if len(class_names) < 2:
        raise DatasetError(
            f"{parts.get('train', folder)}: found {len(class_names)} class folder(s) "
            f"({', '.join(class_names) or 'none'}); expected one subfolder per class, at least 2"
        )
    files: dict[str, list[tuple[Path, int]]] = {}
    for part, root in parts.items():
        found = {p.name for p in _class_folders(root)}
        if not found <= set(class_names):
            raise DatasetError(
                f"{root}: classes {', '.join(sorted(found - set(class_names)))} are not in "
                f"the training classes ({', '.join(class_names)})"
            )
        files[part] = []
        for label, class_name in enumerate(class_names):
            images = _images_in(root / class_name) if class_name in found else []
            if not images and part in ("", "train"):
                raise DatasetError(
                    f"{root / class_name}: an empty class (no {'/'.join(IMAGE_SUFFIXES)} files)"
                )
            files[part] += [(path, label) for path in images]

    decoded: dict[Path, object] = {}
    unreadable = []
    for path, _ in (item for items in files.values() for item in items):
        try:
            with Image.open(path) as image:
                image.load()
                decoded[path] = image.copy()
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            unreadable.append(f"{path} ({type(exc).__name__})")
    if unreadable:
        raise DatasetError(
            f"{folder}: {len(unreadable)} unreadable image(s): {'; '.join(unreadable[:5])}"
            + (" ..." if len(unreadable) > 5 else "")
        )
    images = list(decoded.values())
    if color is None:
        kinds = {color_of(image) for image in images}
        if len(kinds) > 1:
            raise DatasetError(
                f"{folder}: the images mix grey and colour channel counts; choose one with "
                "COLOR=rgb or COLOR=grey (--color)"
            )
        color = kinds.pop()
    if image_size is None:
        sizes = collections.Counter((im.height, im.width) for im in images)
        image_size = sizes.most_common(1)[0][0]
    spec = InputSpec(*image_size, COLORS[color], policy=policy)

    arrays = {}
    for part, items in files.items():
        if not items:
            continue
        x = np.stack([prepare(decoded[p], spec) for p, _ in items]).astype(np.uint8)
        arrays[part] = (x, np.array([label for _, label in items], dtype=np.int64))
    x, y = arrays.pop("train", None) or arrays.pop("")
    own = {SPLIT_FOLDERS[part]: value for part, value in arrays.items()}
    every_file = sorted(decoded, key=str)
    sha256 = file_sha256(*every_file, names=True) if every_file else ""
    return Dataset(name, sha256, x, y, class_names, policy, own)


# -- sources ---------------------------------------------------------------------------------------


def download_s3(uri: str, folder: Path) -> Path:
    """s3://bucket/key.npz -> a file, s3://bucket/prefix/ -> a folder, through the standard
    AWS configuration."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise DatasetError(f"{uri}: expected s3://BUCKET/KEY.npz or s3://BUCKET/PREFIX/")
    s3 = boto3.client("s3")
    try:
        if key.endswith(".npz"):
            target = folder / Path(key).name
            s3.download_file(bucket, key, str(target))
            return target
        prefix = key.rstrip("/") + "/" if key else ""
        target = folder / "images"
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if not relative or relative.endswith("/"):
                    continue
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(path))
                count += 1
        if not count:
            raise DatasetError(f"{uri}: no objects under this prefix")
        return target
    except (BotoCoreError, ClientError) as exc:
        raise DatasetError(f"{uri}: cannot download ({exc})") from exc


def load_sample() -> tuple[str, dict[str, np.ndarray]]:
    sha256 = file_sha256(SAMPLE_PATH) if SAMPLE_PATH.is_file() else ""
    if sha256 != SAMPLE_SHA256:
        raise DatasetError(
            f"{SAMPLE_PATH}: sha256 {sha256[:12]}... is not the bundled sample's "
            f"{SAMPLE_SHA256[:12]}... (training/data/README.md); restore it with git checkout"
        )
    return sha256, read_npz(SAMPLE_PATH, ("x", "y"))


def load_keras_mnist() -> tuple[str, dict[str, np.ndarray]]:
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
            "cannot download the full MNIST through Keras (offline?): give a local mnist.npz, "
            "a folder of IDX files or an s3:// URI as DATASET, or use DATASET=mnist-sample "
            f"({exc})"
        ) from exc
    return file_sha256(path), read_npz(path, ("x_train", "y_train", "x_test", "y_test"))


def load_dataset(
    source: str,
    image_size: tuple[int, int] | None = None,
    color: str | None = None,
    policy: str | None = None,
) -> Dataset:
    """DATASET -> Dataset. `policy` defaults to ``digit`` for the MNIST built-ins and
    ``stretch`` otherwise; `image_size` and `color` to what the data has."""
    if color is not None and color not in COLORS:
        raise ValueError(f"unknown color {color!r}; allowed: {', '.join(COLORS)}")
    if policy is not None and policy not in POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if source in BUILTIN:
        sha256, arrays = load_sample() if source == "mnist-sample" else load_keras_mnist()
        return from_arrays(
            source, sha256, arrays, DIGITS, policy or "digit", image_size, color, source
        )
    policy = policy or "stretch"
    if source.startswith("s3://"):
        with tempfile.TemporaryDirectory() as tmp:
            local = download_s3(source, Path(tmp))
            return dataclasses.replace(
                load_dataset(str(local), image_size, color, policy), name=source
            )
    path = Path(source).expanduser()
    if path.is_dir():
        idx = {k: find_idx(path, stem) for k, stem in IDX_FILES.items()}
        if all(idx.values()):
            arrays = {k: read_idx(f) for k, f in idx.items()}
            sha256 = file_sha256(*(idx[k] for k in sorted(idx)))
            return from_arrays(source, sha256, arrays, None, policy, image_size, color, source)
        return read_image_folder(path, source, image_size, color, policy)
    if path.suffix == ".npz" or path.is_file():
        arrays = read_npz(path)
        names = arrays.pop("class_names", None)
        class_names = [str(n) for n in names.tolist()] if names is not None else None
        return from_arrays(
            source, file_sha256(path), arrays, class_names, policy, image_size, color, source
        )
    raise DatasetError(
        f"{source}: no such file or folder; DATASET is one of {', '.join(BUILTIN)}, a folder of "
        "class subfolders of images, a folder of IDX files, an .npz file, or an s3:// URI"
    )


def with_test_set(dataset: Dataset, source: str) -> Dataset:
    """`dataset` whose test split is another dataset (--test-dataset, SageMaker's `test`
    channel; any form DATASET accepts): all of its images, prepared to `dataset`'s input, its
    classes matched to `dataset`'s by name (it may lack some)."""
    spec = dataset.input_spec
    test = load_dataset(source, (spec.height, spec.width), spec.color, dataset.policy)
    unknown = sorted(set(test.class_names) - set(dataset.class_names))
    if unknown:
        raise DatasetError(
            f"{source}: classes {', '.join(unknown[:12])} are not among the "
            f"{len(dataset.class_names)} training classes of {dataset.name}"
        )
    ids = np.array([dataset.class_names.index(name) for name in test.class_names], np.int64)
    parts = [(test.x, test.y), *test.own.values()]
    x, y = np.concatenate([p[0] for p in parts]), ids[np.concatenate([p[1] for p in parts])]
    record = {"name": source, "sha256": test.sha256, "size": len(y)}
    return dataclasses.replace(dataset, own={**dataset.own, "test": (x, y)}, test_set=record)


# -- splits ----------------------------------------------------------------------------------------


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
    """Train/validation/test. A dataset's own validation or test split is kept as it is."""
    own_test, own_val = dataset.own.get("test"), dataset.own.get("validation")
    fractions = ((test_fraction,) if own_test is None else ()) + (
        (validation_fraction,) if own_val is None else ()
    )
    *held, train_idx = stratified_split(dataset.y, fractions, seed)
    if own_test is None:
        test_idx = held.pop(0)
        own_test = dataset.x[test_idx], dataset.y[test_idx]
    if own_val is None:
        own_val = dataset.x[held[0]], dataset.y[held[0]]
    (x_test, y_test), (x_val, y_val) = own_test, own_val
    if limit is not None:
        train_idx = np.random.default_rng(seed).permutation(train_idx)[:limit]
    if min(len(y_test), len(y_val), len(train_idx)) < 1:
        raise DatasetError(
            f"{dataset.name}: {len(dataset.y)} examples are too few to hold out validation "
            f"and test examples of every class; add examples or raise the fractions"
        )
    return Splits(dataset.x[train_idx], dataset.y[train_idx], x_val, y_val, x_test, y_test)


def split_record(validation_fraction: float, test_fraction: float, seed: int, limit: int | None):
    """How the splits were made, as the manifest records it (what held_out_split reads)."""
    return {
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "limit": limit,
    }


def held_out_split(manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    """The test split a published model was evaluated on, made again from its manifest: the same
    dataset (checked by sha256), preparation, fractions and seed, so none of it was seen in
    training."""
    recorded = manifest.get("dataset", {})
    split = recorded.get("split")
    if not split:
        raise DatasetError(f"manifest of version {manifest.get('version')} records no split")
    spec = manifest["input"]
    shape = spec["shape"]
    dataset = load_dataset(
        recorded["name"],
        image_size=(shape[1], shape[2]),
        color=spec.get("color", "grey"),
        policy=(spec.get("preprocessing") or {}).get("policy"),
    )
    if dataset.sha256 != recorded.get("sha256"):
        raise DatasetError(
            f"{dataset.name}: sha256 {dataset.sha256[:12]}... is not the dataset this model "
            f"was trained on ({str(recorded.get('sha256'))[:12]}...)"
        )
    if recorded.get("test_set"):
        dataset = with_test_set(dataset, recorded["test_set"]["name"])
        if dataset.test_set["sha256"] != recorded["test_set"]["sha256"]:
            raise DatasetError(
                f"{dataset.test_set['name']}: not the test set this model was evaluated on "
                "(its sha256 differs)"
            )
    splits = make_splits(
        dataset, split["validation_fraction"], split["test_fraction"], split["seed"], split["limit"]
    )
    return splits.x_test, splits.y_test
